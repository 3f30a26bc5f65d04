"""The in-memory state a Store carries: per-name locks, resolved objects, in-flight downloads."""

from __future__ import annotations

import gc
from pathlib import Path

from llamita.server.store.blobs import Store
from llamita.server.store.state import NameLocks, Resolved


def test_name_locks_are_shared_while_held_and_dropped_after() -> None:
    locks = NameLocks()
    held = locks.lock(("a", "b", "c", "d"))
    assert locks.lock(("a", "b", "c", "d")) is held
    assert locks.lock(("x", "b", "c", "d")) is not held
    del held
    gc.collect()
    assert len(locks._locks) == 0  # the table does not grow with every name ever created


def test_resolved_keeps_the_most_recent() -> None:
    cache = Resolved(size=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == (1, 3)


def test_two_stores_share_nothing(tmp_path: Path) -> None:
    one, two = Store(tmp_path / "one"), Store(tmp_path / "two")
    one.resolved.put("sha256:x", "model")
    assert two.resolved.get("sha256:x") is None
    assert one.name_locks.lock(("k",)) is not two.name_locks.lock(("k",))
    assert one.in_flight is not two.in_flight
