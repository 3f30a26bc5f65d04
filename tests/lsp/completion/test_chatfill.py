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
    assert "block" in chatfill.render(Window("def f():\n    ", "\n", 0), Mode.MULTI, "python")


def test_prompt_shows_a_few_lines_around_the_cursor() -> None:
    before = "".join(f"line{k} = {k}\n" for k in range(20))
    after = "".join(f"\nafter{k} = {k}" for k in range(10))
    cropped = chatfill.crop(Window(before + "x = ", after, 0))
    assert cropped.prefix == "".join(f"line{k} = {k}\n" for k in range(12, 20)) + "x = "
    assert cropped.suffix == "".join(f"\nafter{k} = {k}" for k in range(4))
    assert cropped.prefix_start_line == 12
    prompt = chatfill.render(Window(before + "x = ", after, 0), Mode.SINGLE, "python")
    assert "line11 " not in prompt and "line12 = 12" in prompt and "after4" not in prompt


@pytest.mark.parametrize(
    ("line", "mode", "expected"),
    [
        ("    ", Mode.MULTI, Mode.MULTI),  # an empty line: a block may follow
        ("def f(a, b):", Mode.MULTI, Mode.MULTI),
        ("if (x) {", Mode.MULTI, Mode.MULTI),
        ("func (c *Command) Name() string {", Mode.MULTI, Mode.MULTI),
        ("    total = foo(", Mode.MULTI, Mode.SINGLE),  # unfinished code: the rest of the line
        ("    x = ", Mode.MULTI, Mode.SINGLE),
        ("  foo({", Mode.MULTI, Mode.SINGLE),  # an object literal in an open call
        ("d = {'a':", Mode.MULTI, Mode.SINGLE),
        ("    total = ", Mode.SINGLE, Mode.SINGLE),
    ],
)
def test_shape_asks_for_a_block_only_where_one_starts(line: str, mode: Mode, expected: Mode) -> None:
    assert chatfill.shape(Window("a = 1\n" + line, "\n", 0), mode) is expected


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
    block = Window("def add(a, b):\n    ", "\n", 0)
    multi = chatfill.request_body("m", block, Mode.MULTI, num_predict=100, stop=["END"], keep_alive="5m")
    assert multi["options"]["num_predict"] == 100 and multi["keep_alive"] == "5m"
    assert {"\n```", "\n\n\n", "END"} <= set(multi["options"]["stop"])
    # At the end of unfinished code the engine's MULTI becomes the rest of the line.
    line_end = chatfill.request_body("m", WINDOW, Mode.MULTI, num_predict=100)
    assert line_end["options"]["num_predict"] == 48 and "one line" in line_end["prompt"]


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
        ("a + b", SINGLE, "a + b"),  # no fence: kept as is
        ("Here is the code: a + b", SINGLE, ""),  # ... unless it opens like a sentence
        ("The code you provided is a simple example", MULTI, ""),
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


NESTED = FilterContext("def f(xs):\n    if xs:\n        ", "\n    return None\n", Mode.MULTI)


@pytest.mark.parametrize(
    ("raw", "ctx", "expected"),
    [
        # echo: the last complete lines before the cursor, then the body
        ("```python\ndef add(a, b):\n    return a + b\n```", MULTI, "return a + b"),
        ("if xs:\n    for x in xs:\n        print(x)", NESTED, "for x in xs:\n            print(x)"),
        # echo: the end of the cursor line (a word boundary, at least 4 characters)
        ("```\nfoo(a, b)\n```", FilterContext("    x = foo(", "\n", Mode.SINGLE), "a, b)"),
        ("```\nx == 1\n```", FilterContext("if x", "\n", Mode.SINGLE), "x == 1"),  # mid-word: kept
        # at a line end in unfinished code: one line, even in the engine's MULTI
        ("```\nbar(1)\nbaz(2)\n```", FilterContext("x = foo(", "\n", Mode.MULTI), "bar(1)"),
        # a block stops where it repeats the code after the cursor, and at its first blank line
        ("total = a + b\nprint(add(1, 2))", MULTI, "total = a + b"),
        ("total = a + b\n\nprint('other')", MULTI, "total = a + b"),
        # relative indentation becomes the cursor's block; the file's own depth is kept
        ("for x in xs:\n    print(x)", NESTED, "for x in xs:\n            print(x)"),
        ("a = 1\nb = 2", NESTED, "a = 1\n        b = 2"),
        ("a = 1\n        b = 2", NESTED, "a = 1\n        b = 2"),
        ("    a = 1\n    b = 2", NESTED, "a = 1\n        b = 2"),
        # nothing worth showing
        ("```\n   \n```", MULTI, ""),
        ("```python\n\nprint(add(1, 2))\n```", MULTI, ""),
    ],
)
def test_extract_rules(raw: str, ctx: FilterContext, expected: str) -> None:
    assert chatfill.extract(raw, ctx) == expected


def test_prose_needs_a_sentence_and_no_fence() -> None:
    assert chatfill.drop_prose("Name string `json`", "Name string `json`") == "Name string `json`"
    assert chatfill.drop_prose("Foo.bar(x)", "Foo.bar(x)") == "Foo.bar(x)"
    fenced = "```\nThe value is set here\n```"
    assert chatfill.drop_prose(fenced, "The value is set here") == "The value is set here"


def test_a_short_echo_is_not_cut() -> None:
    """A lone closing line may be new code; only echoes of MIN_ECHO characters are dropped."""
    ctx = FilterContext("if (a) {\n  b();\n}\n", "\nfoo();", Mode.MULTI)
    assert chatfill.drop_echoed_lines("}\nbar();", ctx) == "}\nbar();"
    assert chatfill.cut_at_suffix("x();\n}", FilterContext("  ", "\n}", Mode.MULTI)) == "x();\n}"


@pytest.mark.parametrize(
    ("raw", "ctx", "language", "expected"),
    [
        ("```python\n# Replace  with the sum\ntotal = a + b\n```", SINGLE, "python", "a + b"),
        ("```\n# Replace  with your desired output\n```", MULTI, "python", ""),  # narration only
        (
            "```js\n// the rest of the line\nvalue;\n```",
            FilterContext("return ", "\n}", Mode.SINGLE),
            "javascript",
            "value;",
        ),
        (
            "# a comment is the answer",
            FilterContext("x = 1  ", "\n", Mode.SINGLE),
            "",
            "# a comment is the answer",
        ),
        ("add a and b", FilterContext("    # ", "\n", Mode.SINGLE), "python", "add a and b"),  # in a comment
    ],
)
def test_narration_comments_are_dropped_in_code(
    raw: str, ctx: FilterContext, language: str, expected: str
) -> None:
    assert chatfill.extract(raw, ctx, language) == expected
