"""The language server's LRU of recently edited documents."""

from __future__ import annotations

from llamita.lsp.completion.recent import RecentFile, RecentFiles


def test_newest_first_bounded_and_excluding_the_current_document() -> None:
    recent = RecentFiles(size=2)
    recent.touch("file:///a.py", "/a.py", "a1")
    recent.touch("file:///b.py", "/b.py", "b1")
    recent.touch("file:///a.py", "/a.py", "a2")  # edited again: newest, with its new text
    assert [f.text for f in recent.newest_first()] == ["a2", "b1"]
    recent.touch("file:///c.py", "/c.py", "c1")
    assert len(recent) == 2 and recent.get("file:///b.py") is None
    assert recent.newest_first(exclude="file:///c.py") == [RecentFile("file:///a.py", "/a.py", "a2")]
