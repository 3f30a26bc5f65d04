"""FIM request bodies: native Suffix path, raw templates per family, options."""

from __future__ import annotations

from pathlib import Path

import pytest

from llamita.lsp.completion.context import Window
from llamita.lsp.completion.fim import (
    DEFAULT_FAMILY,
    TemplateError,
    family_for,
    load_template,
    options,
    parse_template,
    request_body,
)
from llamita.lsp.completion.syntax import Mode

GOLDEN = {
    "qwen2.5-coder": "<|fim_prefix|>P$<|fim_suffix|>S{x}<|fim_middle|>",
    "deepseek-coder": "<｜fim▁begin｜>P$<｜fim▁hole｜>S{x}<｜fim▁end｜>",
    "codellama": "<PRE> P$ <SUF>S{x} <MID>",
    "starcoder2": "<fim_prefix>P$<fim_suffix>S{x}<fim_middle>",
    "codegemma": "<|fim_prefix|>P$<|fim_suffix|>S{x}<|fim_middle|>",
    "codestral": "[SUFFIX]S{x}[PREFIX]P$",
}


@pytest.mark.parametrize("family", sorted(GOLDEN))
def test_packaged_templates_render(family: str) -> None:
    template = load_template(family)
    # Code full of "$" and braces passes through untouched.
    assert template.render("P$", "S{x}") == GOLDEN[family]
    assert template.stop and all(template.stop)


@pytest.mark.parametrize(
    ("model", "family", "expected"),
    [
        ("qwen2.5-coder:1.5b-base", "qwen2", "qwen2.5-coder"),
        ("deepseek-coder-v2:lite", "deepseek2", "deepseek-coder"),
        ("codellama:7b-code", "llama", "codellama"),
        ("codegemma:2b-code", "gemma", "codegemma"),
        ("codestral:22b", "llama", "codestral"),
        ("starcoder2:3b", "starcoder2", "starcoder2"),
        ("smollm2:135m", "llama", DEFAULT_FAMILY),
        ("my-finetune", "qwen2", DEFAULT_FAMILY),
    ],
)
def test_family_for(model: str, family: str, expected: str) -> None:
    assert family_for(model, family) == expected


def test_family_setting_wins() -> None:
    assert family_for("qwen2.5-coder:7b", "qwen2", forced="codellama") == "codellama"


def test_parse_template_header_and_body() -> None:
    text = "# a comment\nstop: <end>\nstop: \\n\\n\nstop: \n\n---\nA$prefix B$suffix C\n\n"
    template = parse_template("t", text)
    assert template.template == "A$prefix B$suffix C\n"  # only the file's final newline is dropped
    assert template.stop == ("<end>", "\n\n")


@pytest.mark.parametrize(
    "text",
    ["no separator $prefix", "---\n$suffix only", "---\n$prefix $unknown", "---\n$prefix 100$"],
    ids=["no-separator", "no-prefix", "unknown-field", "bare-dollar"],
)
def test_parse_template_errors(text: str) -> None:
    with pytest.raises(TemplateError):
        parse_template("t", "stop: x\n" + text)


def test_user_override_directory(tmp_path: Path) -> None:
    (tmp_path / "fim").mkdir()
    (tmp_path / "fim" / "mine.txt").write_text("stop: <eot>\n---\n<pre>$prefix<suf>$suffix<mid>\n")
    template = load_template("mine", str(tmp_path))
    assert template.render("a", "b") == "<pre>a<suf>b<mid>" and template.stop == ("<eot>",)
    (tmp_path / "fim" / "codellama.txt").write_text("---\n[$prefix|$suffix]\n")
    assert load_template("codellama", str(tmp_path)).render("a", "b") == "[a|b]"
    assert load_template("codellama").render("a", "b") == "<PRE> a <SUF>b <MID>"


def test_options_single_line_stops_at_newline() -> None:
    single = options(Mode.SINGLE, 128, 0.2, ["<eot>"])
    assert single["stop"] == ["<eot>", "\n"] and single["num_predict"] == 48
    multi = options(Mode.MULTI, 128, 0.2, [])
    assert "stop" not in multi and multi["num_predict"] == 128 and multi["temperature"] == 0.2


def test_native_body_uses_prompt_and_suffix() -> None:
    body = request_body(
        "qwen2.5-coder:1.5b",
        Window("def f():\n    ", "\nprint(f())\n", 0),
        Mode.MULTI,
        snippets="# Path: a.py\n# x = 1\n",
        num_predict=64,
        keep_alive="30m",
    )
    assert body == {
        "model": "qwen2.5-coder:1.5b",
        "prompt": "# Path: a.py\n# x = 1\ndef f():\n    ",
        "suffix": "\nprint(f())\n",
        "options": {"num_predict": 64, "temperature": 0.2, "top_p": 0.9},
        "keep_alive": "30m",
    }


def test_empty_suffix_still_takes_the_fim_branch() -> None:
    assert request_body("m", Window("x = ", "", 0), Mode.MULTI)["suffix"] == "\n"


def test_raw_body_renders_the_family_template() -> None:
    body = request_body(
        "smollm2", Window("a = ", "\n", 0), Mode.SINGLE, template=load_template("starcoder2"), stop=["#"]
    )
    assert body["raw"] is True and "suffix" not in body
    assert body["prompt"] == "<fim_prefix>a = <fim_suffix>\n<fim_middle>"
    assert body["options"]["stop"][-2:] == ["#", "\n"]
    assert "<fim_prefix>" in body["options"]["stop"]
    assert "keep_alive" not in body
