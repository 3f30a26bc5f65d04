"""The in-memory state that belongs with one :class:`~.blobs.Store`, not with the process.

Requests that use the same store share it: the lock that serialises creates of one name,
the models already resolved from their manifests, and the blob downloads in flight.  It
hangs off the ``Store`` that ``build_app`` (or a test) constructs, so two apps over two
stores share nothing, and nothing outlives the store that holds it.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import Any


class NameLocks:
    """One lock per model name (its case-insensitive key); unused locks are dropped."""

    def __init__(self) -> None:
        # A lock lives while a caller holds a reference to it; the dict never grows past
        # the names being written right now.
        self._locks: weakref.WeakValueDictionary[tuple[str, ...], threading.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._guard = threading.Lock()

    def lock(self, key: tuple[str, ...]) -> threading.Lock:
        with self._guard:
            lock = self._locks.get(key)
            if lock is None:
                lock = self._locks[key] = threading.Lock()
            return lock


class Resolved:
    """A small LRU of objects derived from a manifest, keyed by the manifest's digest.

    ``model/model.py`` keeps its resolved models here: an editor sends several requests a
    second, and re-reading layers and re-parsing the template each time would make the
    event loop, not the model, the bottleneck.
    """

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str) -> Any | None:
        with self._lock:
            value = self._items.get(digest)
            if value is not None:
                self._items.move_to_end(digest)
            return value

    def put(self, digest: str, value: Any) -> None:
        with self._lock:
            self._items[digest] = value
            self._items.move_to_end(digest)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


class InFlight:
    """The downloads running into this store, by blob path (``registry/download.py`` uses it)."""

    def __init__(self) -> None:
        self.jobs: dict[Path, Any] = {}
        self.lock = threading.Lock()
