"""The one token estimate the editor side budgets with."""

from __future__ import annotations

from llamita.lsp.tokens import estimate_tokens


def test_estimate_tokens() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abc") == 1
    assert estimate_tokens("x" * 35) == 10
