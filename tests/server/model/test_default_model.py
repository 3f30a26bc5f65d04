from __future__ import annotations

from pathlib import Path

from llamita.server.model.default_model import (
    CHATML_TEMPLATE,
    DEFAULT_MODEL,
    DEFAULT_SYSTEM,
    ensure_default_model,
    find_default_gguf,
)
from llamita.server.prompt.render import render_prompt
from llamita.server.prompt.tools import ToolParser, chat_messages
from llamita.server.store.blobs import Store
from llamita.server.store.names import require_name
from llamita.server.template import parse


def test_the_packaged_gguf_is_found() -> None:
    path = find_default_gguf()
    assert path is not None and path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_an_empty_store_gets_the_default_model_with_its_system_prompt(store: Store) -> None:
    assert ensure_default_model(store) is True
    manifest = store.get(require_name(DEFAULT_MODEL))
    assert manifest is not None
    kinds = [layer.media_type.rsplit(".", 1)[-1] for layer in manifest.layers]
    assert sorted(kinds) == ["model", "params", "system", "template"]
    system = next(layer for layer in manifest.layers if layer.media_type.endswith(".system"))
    assert store.read_blob(system.digest).decode() == DEFAULT_SYSTEM


def test_a_store_with_any_model_is_left_alone(store: Store, tmp_path: Path) -> None:
    assert ensure_default_model(store) is True
    store.copy(require_name(DEFAULT_MODEL), require_name("mine:1"))
    store.delete(require_name(DEFAULT_MODEL))
    assert ensure_default_model(store) is False
    assert store.get(require_name(DEFAULT_MODEL)) is None


def test_the_default_template_offers_tools_and_parses_their_calls() -> None:
    template = parse(CHATML_TEMPLATE)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    history = [
        {"role": "system", "content": DEFAULT_SYSTEM},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
        },
        {"role": "tool", "content": "sunny"},
    ]
    text = render_prompt(template, history, tools=tools, think=None)
    assert text.startswith(f"<|im_start|>system\n{DEFAULT_SYSTEM}\n\n# Tools\n")
    assert '"name": "get_weather"' in text and "<tool_response>\nsunny\n</tool_response>" in text
    assert text.endswith("<|im_start|>assistant\n")

    parser = ToolParser(template, tools)
    reply = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    messages = chat_messages(*parser.feed(reply)) + chat_messages(*parser.flush())
    calls = [call for m in messages for call in m.get("tool_calls", [])]
    assert [c["function"]["arguments"] for c in calls] == [{"city": "Oslo"}]
