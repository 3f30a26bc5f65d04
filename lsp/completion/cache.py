"""An LRU cache of suggestions keyed by document context, with typing-through.

Key: the model plus hashes of the whole text before and after the cursor, so the same context in the
same document state always hits (moving back with the arrow keys, a client re-asking after a redraw).

Typing-through: while a suggestion ``S`` is shown and the user types its first characters ``t``, the
new context is ``before + t`` with the same ``after``; the cache answers ``S[len(t):]`` without asking
the model (tabby-agent pre-inserts "forwarding" entries for this; scanning the few entries that share
``after`` is simpler and covers every prefix of ``S``). Entries hold hashes, not document copies.
An entry with empty text records "the model had nothing useful here" (never typed through).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from .filters import Suggestion


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


@dataclass(frozen=True)
class _Entry:
    model: str
    before_len: int
    before_hash: bytes
    after_hash: bytes
    suggestion: Suggestion


class CompletionCache:
    """LRU of at most ``size`` entries; ``hits``/``misses`` feed the benchmark and the status log."""

    def __init__(self, size: int = 100) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, bytes, bytes], _Entry] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def put(self, model: str, before: str, after: str, suggestion: Suggestion) -> None:
        key = (model, _digest(before), _digest(after))
        self._entries[key] = _Entry(model, len(before), key[1], key[2], suggestion)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def get(self, model: str, before: str, after: str) -> Suggestion | None:
        after_hash = _digest(after)
        key = (model, _digest(before), after_hash)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return entry.suggestion
        found = self._typed_through(model, before, after_hash)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def _typed_through(self, model: str, before: str, after_hash: bytes) -> Suggestion | None:
        for entry in reversed(self._entries.values()):
            if entry.model != model or entry.after_hash != after_hash or len(before) <= entry.before_len:
                continue
            typed = before[entry.before_len :]
            text = entry.suggestion.text
            if len(typed) >= len(text) or not text.startswith(typed):
                continue
            if _digest(before[: entry.before_len]) != entry.before_hash:
                continue
            return Suggestion(text[len(typed) :], entry.suggestion.replace)
        return None
