"""FIM windows: token budgets, and the keystroke-stable layout that lets the server reuse its KV cache."""

from __future__ import annotations

import pytest

from llamita.lsp.completion.context import (
    build_window,
    line_comment,
    prefix_window,
    suffix_window,
)
from llamita.lsp.tokens import estimate_tokens

LINES = [f"line_{i:03d} = {i}" for i in range(200)]  # 14 characters: 4 tokens + 1 for the newline
DOC = "\n".join(LINES) + "\n"


def test_prefix_window_fits_the_budget_and_starts_on_a_snapped_line() -> None:
    before = "\n".join(LINES[:150]) + "\nre"
    text, start = prefix_window(before, budget=200, snap=16)
    assert estimate_tokens(text) <= 200
    assert start % 16 == 0
    assert text == "\n".join(LINES[start:150]) + "\nre"
    assert start + 16 > 150 - 200 // 5  # never more than one snap step shorter than possible


def test_prefix_window_start_is_stable_while_typing() -> None:
    """Typing on the cursor line and adding lines keep the window's start, so prompts share a prefix."""
    starts = set()
    for lines in range(150, 158):
        for typed in ("", "x", "x = 1", "x = some_value"):
            _, start = prefix_window("\n".join(LINES[:lines]) + "\n" + typed, budget=200, snap=16)
            starts.add(start)
    assert len(starts) <= 2  # one snap boundary may be crossed in 8 lines, never one change per keystroke


def test_prefix_window_whole_document_when_it_fits() -> None:
    assert prefix_window("a\nb\nc", budget=100) == ("a\nb\nc", 0)


def test_prefix_window_cuts_an_overlong_cursor_line_on_the_left() -> None:
    text, start = prefix_window("a\n" + "x" * 1000, budget=10)
    assert start == 1 and text == "x" * 35


def test_suffix_window_keeps_whole_snapped_lines() -> None:
    after = " + 1\n" + DOC
    text = suffix_window(after, budget=100, snap=8)
    assert text.startswith(" + 1\n") and text.endswith("\n")
    assert len(text.split("\n")[:-1]) % 8 == 0
    assert estimate_tokens(text) <= 100
    assert suffix_window("rest\nof it", budget=100) == "rest\nof it"


def test_build_window_splits_the_budget() -> None:
    offset = DOC.index("line_100")
    window = build_window(DOC[:offset], DOC[offset:], budget=400, suffix_share=0.25, snap=16)
    assert window.prefix.endswith("line_099 = 99\n")
    assert window.suffix.startswith("line_100 = 100\n")
    assert estimate_tokens(window.suffix) <= 100
    assert estimate_tokens(window.prefix) + estimate_tokens(window.suffix) <= 400
    assert window.prefix_start_line % 16 == 0
    assert build_window("a", "b", budget=100, suffix_share=0).suffix == ""


@pytest.mark.parametrize(
    ("language", "marker"), [("python", "#"), ("typescript", "//"), ("lua", "--"), ("go", "//")]
)
def test_line_comment(language: str, marker: str) -> None:
    assert line_comment(language) == marker
