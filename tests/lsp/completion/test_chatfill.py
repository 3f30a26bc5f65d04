"""Chat fill-in for models without FIM training: when it is used, its prompt, and its post-processing."""

from __future__ import annotations

from pathlib import Path

import pytest

from llamita.lsp.completion import chatfill
from llamita.lsp.completion.context import Window
from llamita.lsp.completion.filters import FilterContext, postprocess
from llamita.lsp.completion.syntax import Mode

WINDOW = Window("def add(a, b):\n    total = ", "\n    return total\n", 0)


@pytest.mark.parametrize(
    ("model", "family", "forced", "expected"),
    [
        ("smollm2:135m", "llama", "", True),  # no FIM family matches: chat
        ("my-chat-model", "qwen2", "", True),
        ("qwen2.5-coder:1.5b", "qwen2", "", False),  # its own FIM tokens beat an instruction
        ("starcoder2:3b", "starcoder2", "", False),
        ("smollm2:135m", "llama", "starcoder2", False),  # the setting forces a raw template
        ("qwen2.5-coder:1.5b", "qwen2", "chat", True),  # ... or the chat fill-in
    ],
)
def test_use_chat_precedence(model: str, family: str, forced: str, expected: bool) -> None:
    assert chatfill.use_chat(model, family, forced) is expected


def test_prompt_shows_prefix_hole_and_suffix() -> None:
    prompt = chatfill.render(WINDOW, Mode.SINGLE, "python")
    assert "```python\ndef add(a, b):\n    total = <HOLE>\n    return total\n\n```" in prompt
    assert "one line" in prompt and "only the code that replaces <HOLE>" in prompt
    assert "block" in chatfill.render(WINDOW, Mode.MULTI, "python")


def test_repository_context_is_a_reference_block_before_the_code() -> None:
    context = "# Path: pkg/util.py\n# def helper(x): ...\n"
    prompt = chatfill.render(WINDOW, Mode.MULTI, "python", snippets=context)
    reference = f"for reference:\n\n```python\n{context}```\n\n```python\ndef add(a, b):\n    total = <HOLE>"
    assert reference in prompt
    assert "Code from other files" not in chatfill.render(WINDOW, Mode.MULTI, "python")


def test_prompt_file_can_be_overridden(tmp_path: Path) -> None:
    (tmp_path / "fim_chat.md").write_text("Fill $language: $prefix[*]$suffix ($shape)")
    prompt = chatfill.render(Window("a = ", "\n", 0), Mode.SINGLE, "python", override_dir=str(tmp_path))
    assert prompt == f"Fill python: a = [*]\n ({chatfill.SHAPES[Mode.SINGLE]})"


def test_body_is_a_chat_templated_generate_cut_to_one_line_or_block() -> None:
    body = chatfill.request_body("smollm2:135m", WINDOW, Mode.SINGLE, language="python", temperature=0)
    assert "raw" not in body and "suffix" not in body  # the server applies the chat template
    assert body["options"]["num_predict"] <= 48 and "\n```" in body["options"]["stop"]
    assert "\n" not in body["options"]["stop"]  # the fence line comes first; extract() keeps one line
    multi = chatfill.request_body("m", WINDOW, Mode.MULTI, num_predict=100, stop=["END"], keep_alive="5m")
    assert multi["options"]["num_predict"] == 100 and multi["keep_alive"] == "5m"
    assert {"\n```", "\n\n\n", "END"} <= set(multi["options"]["stop"])


SINGLE = FilterContext("def add(a, b):\n    total = ", "\n    return total\n", Mode.SINGLE)
MULTI = FilterContext("def add(a, b):\n    ", "\n\nprint(add(1, 2))\n", Mode.MULTI)


@pytest.mark.parametrize(
    ("raw", "ctx", "expected"),
    [
        ("```python\na + b\n```", SINGLE, "a + b"),
        ("```\n    total = a + b\n```\nThis adds.", SINGLE, "a + b"),  # echoed line before the cursor
        ("a + b<HOLE>", SINGLE, "a + b"),
        ("\n\na + b\n    return total", SINGLE, "a + b"),  # first non-empty line only
        ("```python\n    total = a + b\n    return total\n```", MULTI, "total = a + b\n    return total"),
        ("Here is the code: a + b", SINGLE, "Here is the code: a + b"),  # no fence: kept as is
    ],
)
def test_extract(raw: str, ctx: FilterContext, expected: str) -> None:
    assert chatfill.extract(raw, ctx) == expected


def test_suffix_overlap_is_dropped() -> None:
    ctx = FilterContext("print(", ")\n", Mode.SINGLE)
    assert chatfill.extract("```\nadd(1, 2))\n```", ctx) == "add(1, 2)"


def test_extracted_text_then_goes_through_the_shared_filters() -> None:
    suggestion = postprocess(chatfill.extract("```python\n    total = a + b * 2\n```", SINGLE), SINGLE)
    assert suggestion is not None and suggestion.text == "a + b * 2"
