"""The repository-level FIM format (Qwen2.5-Coder's)."""

from __future__ import annotations

from llamita.lsp.completion.context import Window
from llamita.lsp.completion.repo import STOPS, TOKENS, render, request_body, supported
from llamita.lsp.completion.syntax import Mode


def test_supported_needs_every_marker() -> None:
    assert supported({*TOKENS, "<|endoftext|>"})
    assert not supported({"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"})
    assert not supported(())


def test_render_layout() -> None:
    prompt = render(
        "shop", [("pkg/util.py", "def f(): ...\n"), ("b.py", "x = 1")], "main.py", "y = f(", ")\n"
    )
    assert prompt == (
        "<|repo_name|>shop\n"
        "<|file_sep|>pkg/util.py\ndef f(): ...\n"
        "<|file_sep|>b.py\nx = 1\n"
        "<|file_sep|>main.py\n<|fim_prefix|>y = f(<|fim_suffix|>)\n<|fim_middle|>"
    )
    assert render("", [], "", "a", "b") == (
        "<|repo_name|>workspace\n<|file_sep|>untitled\n<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>"
    )


def test_request_body_is_raw_with_the_formats_stops() -> None:
    body = request_body(
        "qwen", Window("x = ", "\n", 0), Mode.SINGLE, repo="r", files=[], current_path="m.py", keep_alive="5m"
    )
    assert body["raw"] is True and body["prompt"].endswith("<|fim_prefix|>x = <|fim_suffix|>\n<|fim_middle|>")
    assert set(STOPS) | {"\n"} <= set(body["options"]["stop"])
    assert body["keep_alive"] == "5m"
