"""The suggestion cache: exact hits, typing through a shown suggestion, LRU eviction."""

from __future__ import annotations

from llamita.lsp.completion.cache import CompletionCache
from llamita.lsp.completion.filters import Suggestion

BEFORE = "def add(a, b):\n    return "
AFTER = "\n\nprint(add(1, 2))\n"


def test_exact_hit_and_miss() -> None:
    cache = CompletionCache()
    cache.put("m", BEFORE, AFTER, Suggestion("a + b"))
    assert cache.get("m", BEFORE, AFTER) == Suggestion("a + b")
    assert cache.get("other-model", BEFORE, AFTER) is None
    assert cache.get("m", BEFORE, AFTER + "x") is None
    assert (cache.hits, cache.misses) == (1, 2)


def test_typing_through_returns_the_rest() -> None:
    cache = CompletionCache()
    cache.put("m", BEFORE, AFTER, Suggestion("a + b)", replace=1))
    assert cache.get("m", BEFORE + "a", AFTER) == Suggestion(" + b)", 1)
    assert cache.get("m", BEFORE + "a + ", AFTER) == Suggestion("b)", 1)


def test_typing_something_else_or_everything_misses() -> None:
    cache = CompletionCache()
    cache.put("m", BEFORE, AFTER, Suggestion("a + b"))
    assert cache.get("m", BEFORE + "x", AFTER) is None
    assert cache.get("m", BEFORE + "a + b", AFTER) is None  # nothing left to suggest
    assert cache.get("m", "other" + BEFORE[5:] + "a", AFTER) is None  # same length, different text before


def test_empty_entries_are_remembered_but_not_typed_through() -> None:
    cache = CompletionCache()
    cache.put("m", BEFORE, AFTER, Suggestion(""))
    assert cache.get("m", BEFORE, AFTER) == Suggestion("")
    assert cache.get("m", BEFORE + "a", AFTER) is None


def test_lru_eviction_keeps_recently_used() -> None:
    cache = CompletionCache(size=2)
    cache.put("m", "a", "", Suggestion("one1"))
    cache.put("m", "b", "", Suggestion("two2"))
    assert cache.get("m", "a", "") is not None  # refreshes "a"
    cache.put("m", "c", "", Suggestion("three"))
    assert len(cache) == 2
    assert cache.get("m", "b", "") is None
    assert cache.get("m", "a", "") == Suggestion("one1")
    cache.clear()
    assert len(cache) == 0
