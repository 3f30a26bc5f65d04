"""A small LRU of recently edited documents, kept by the language server from didChange and didClose.

The file a user edited a minute ago and closed is often the one the current edit mirrors (the model and
its test, the handler and its route), and it is no longer among the open documents. The server records
each document's text as it changes; a closed document keeps its last text here until ``size`` newer
ones push it out. Only the text is kept (no disk reads), so nothing here can go stale behind the editor's
back.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

SIZE = 10


@dataclass(frozen=True)
class RecentFile:
    uri: str
    path: str
    text: str


class RecentFiles:
    """The ``size`` most recently edited documents, newest last."""

    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self._files: OrderedDict[str, RecentFile] = OrderedDict()

    def __len__(self) -> int:
        return len(self._files)

    def touch(self, uri: str, path: str, text: str) -> None:
        """``uri`` was edited (or closed) with this text: it becomes the newest entry."""
        self._files[uri] = RecentFile(uri, path, text)
        self._files.move_to_end(uri)
        while len(self._files) > self.size:
            self._files.popitem(last=False)

    def get(self, uri: str) -> RecentFile | None:
        return self._files.get(uri)

    def newest_first(self, exclude: str = "") -> list[RecentFile]:
        return [f for f in reversed(self._files.values()) if f.uri != exclude]
