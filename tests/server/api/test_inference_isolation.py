"""One request never harms another (issue 11, review findings 3, 10, 19).

Real server, real SmolLM2.  Where a test needs a request to be *in* a given stage (rendering),
it holds that stage on an event instead of relying on how long it takes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import ollama
import pytest

from llamita.server.model.create import PROJECTOR
from llamita.server.model.model import StoredModel, load_model
from llamita.server.prompt.render import chat_prompt_messages, render_prompt
from llamita.server.prompt.tools import ToolParser
from llamita.server.runtime import kinds
from llamita.server.store.blobs import Layer
from llamita.server.store.names import parse_name

pytestmark = pytest.mark.model

MODEL = "smollm2:135m"
EMPTY = "the rendered prompt is empty: the template produced no text to evaluate"
NOTHING = "{{ if false }}a{{ end }}"  # renders "", and SmolLM2 adds no BOS: zero tokens


def test_a_prompt_of_no_tokens_is_a_400_and_the_bystander_is_unchanged(server) -> None:
    """It used to sample its first token from the bystander's logits (a cross-request leak)."""
    generate = server.url + "/api/generate"
    bystander = {"model": MODEL, "prompt": "Tell me about Zork the dragon.", "options": {"temperature": 0}}
    bystander["options"]["num_predict"] = 24
    # The reference is taken as the bystander will run: its prompt already in the KV cache (all
    # but its last token reused), as a cold prefill's batched arithmetic may round differently.
    httpx.post(generate, json={**bystander, "stream": False}, timeout=600)
    solo = httpx.post(generate, json={**bystander, "stream": False}, timeout=600).json()["response"]
    with httpx.stream("POST", generate, json=bystander, timeout=600) as r:
        lines = r.iter_lines()
        parts = [json.loads(next(lines))]
        bad = httpx.post(generate, json={"model": MODEL, "prompt": "x", "template": NOTHING}, timeout=600)
        parts += [json.loads(line) for line in lines]
    assert (bad.status_code, bad.json()) == (400, {"error": EMPTY})
    assert parts[-1]["done"] is True and "".join(p["response"] for p in parts) == solo


@pytest.fixture
def client(server) -> Iterator[ollama.Client]:
    c = ollama.Client(host=server.url)
    yield c
    c.close()


def test_a_chat_template_that_renders_nothing_is_a_400(server, client: ollama.Client) -> None:
    client.create(model="blank", from_=MODEL, template=NOTHING + "{{ range .Messages }}{{ end }}")
    body = {"model": "blank", "messages": [{"role": "user", "content": "hi"}], "stream": False}
    r = httpx.post(server.url + "/api/chat", json=body, timeout=600)
    assert (r.status_code, r.json()) == (400, {"error": EMPTY})
    loaded = client.chat(model="blank", messages=[])  # an empty chat still only loads the model
    assert loaded.done_reason == "load"


def test_empty_prompt_still_only_loads(server) -> None:
    r = httpx.post(server.url + "/api/generate", json={"model": MODEL, "template": NOTHING}, timeout=600)
    assert r.status_code == 200 and r.json()["done_reason"] == "load"


def _chat(turns: int) -> list[dict[str, Any]]:
    roles = ("user", "assistant")
    return [{"role": roles[i % 2], "content": f"turn {i}: {'some words ' * 10}"} for i in range(turns)]


def _quarter_tokens(text: str) -> list[int]:
    """What ``_debug_render_only`` counts (no model is loaded for it): a token per 4 characters."""
    return [0] * (len(text) // 4)


def _dropping_one_turn_at_a_time(model: StoredModel, chat: list[dict[str, Any]], num_ctx: int) -> str:
    """Ollama's chatPrompt loop, as llamita ran it before (one render per dropped turn)."""
    template = model.template
    msgs = chat_prompt_messages(chat, model_system=model.system)
    for start in range(len(msgs)):
        kept = [m for m in msgs[:start] if m.get("role") == "system"] + msgs[start:]
        text = render_prompt(template, kept)
        if len(_quarter_tokens(text)) <= num_ctx:
            return text
    return text


def test_a_long_chat_keeps_the_same_turns(server) -> None:
    """300 turns at num_ctx 512 took 14 s of the event loop (one render per dropped turn)."""
    chat = _chat(300)
    body = {"model": MODEL, "messages": chat, "stream": False, "options": {"num_ctx": 512, "num_predict": 1}}
    r = httpx.post(server.url + "/api/chat", json=body, timeout=600)
    assert r.status_code == 200 and r.json()["done"] is True, r.text
    assert 400 < r.json()["prompt_eval_count"] <= 512  # as many recent turns as fit, no more

    rendered = httpx.post(server.url + "/api/chat", json={**body, "_debug_render_only": True}, timeout=600)
    expected = _dropping_one_turn_at_a_time(load_model(server.store, parse_name(MODEL)), chat, 512)
    assert rendered.json()["_debug_info"]["rendered_template"] == expected  # the same kept turns


def _with_projector(server, name: str) -> None:
    """``MODEL`` plus a projector layer: Ollama's vision capability (the blob is never read)."""
    base = server.store.get(parse_name(MODEL))
    blob = server.store.write_blob_bytes(b"a multimodal projector (a stand-in: it is never loaded)")
    layers = [*base.layers, Layer(PROJECTOR, blob.digest, blob.size)]
    server.store.write_manifest(parse_name(name), base.config, layers)


def test_images_to_a_vision_model_are_refused(server, client: ollama.Client) -> None:
    """llamita has no multimodal path: the model would answer about an image it never saw."""
    _with_projector(server, "seeing")
    assert "vision" in client.show("seeing").capabilities
    image = "aGVsbG8="
    message = "registry.ollama.ai/library/seeing:latest has the vision capability, but llamita cannot"
    generate = {"model": "seeing", "prompt": "What is this?", "images": [image], "stream": False}
    r = httpx.post(server.url + "/api/generate", json=generate, timeout=600)
    assert r.status_code == 400 and r.json()["error"].startswith(message)
    chat = {"model": "seeing", "messages": [{"role": "user", "content": "?", "images": [image]}]}
    r = httpx.post(server.url + "/api/chat", json=chat, timeout=600)
    assert r.status_code == 400 and r.json()["error"].startswith(message)


class _ExplodingParser(ToolParser):
    """A tool parser with a bug that shows on its second piece of text."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pieces = 0

    def feed(self, text: str) -> tuple[str, list[dict[str, Any]]]:
        self.pieces += 1
        if self.pieces > 1:
            raise RuntimeError("tool parser exploded")
        return text, []


def test_an_unexpected_failure_after_the_first_line_is_an_error_line(
    server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It used to abort the connection mid-stream (the client saw a broken response)."""
    monkeypatch.setattr(kinds, "ToolParser", _ExplodingParser)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hello."}],
        "tools": tools,
        "options": {"temperature": 0, "num_predict": 8},
    }
    with httpx.stream("POST", server.url + "/api/chat", json=body, timeout=600) as r:
        lines = [json.loads(line) for line in r.iter_lines()]
    assert lines[0]["done"] is False and lines[-1] == {"error": "tool parser exploded"}
    follow = httpx.post(server.url + "/api/generate", json={"model": MODEL, "prompt": ""}, timeout=600)
    assert follow.status_code == 200  # the runner was released
