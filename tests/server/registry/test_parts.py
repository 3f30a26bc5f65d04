"""parts.py: the part plan and the resumable state on disk, in Ollama's file layout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llamita.server.registry import parts
from llamita.server.store.blobs import Store


def test_plan_follows_ollamas_sizing() -> None:
    mb = 1000 * 1000
    assert [p.size for p in parts.plan(250 * mb)] == [100 * mb, 100 * mb, 50 * mb]
    assert len(parts.plan(40_000 * mb)) == 40  # 2.5 GB each would exceed the 1 GB cap
    assert {p.size for p in parts.plan(4_800 * mb)} == {300 * mb} and len(parts.plan(4_800 * mb)) == 16
    assert parts.plan(0) == []
    plan = parts.plan(10, parts=3, min_size=1, max_size=100)
    assert [(p.n, p.offset, p.size) for p in plan] == [(0, 0, 3), (1, 3, 3), (2, 6, 3), (3, 9, 1)]


def test_part_state_round_trip_in_ollamas_format(tmp_path: Path) -> None:
    blob = tmp_path / ("sha256-" + "e" * 64)
    plan = parts.plan(10, parts=2, min_size=1, max_size=100)
    plan[0].completed = 4
    parts.partial_path(blob).write_bytes(b"\0" * 10)
    for part in plan:
        parts.save(blob, part)
    assert parts.part_path(blob, 0).read_text() == '{"N":0,"Offset":0,"Size":5,"Completed":4}\n'
    loaded = parts.load(blob, 10)
    assert loaded == plan and loaded[0].start == 4 and loaded[1].end == 10
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    assert parts.load(blob, 11) is None  # another size: start over
    parts.discard(blob)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "damage",
    ["torn", "gap", "too_far", "no_data", "wrong_n", "short_data"],
)
def test_part_state_that_cannot_be_trusted_is_ignored(tmp_path: Path, damage: str) -> None:
    blob = tmp_path / ("sha256-" + "f" * 64)
    plan = parts.plan(10, parts=2, min_size=1, max_size=100)
    parts.partial_path(blob).write_bytes(b"\0" * 10)
    for part in plan:
        parts.save(blob, part)
    if damage == "torn":
        parts.part_path(blob, 1).write_text('{"N":1,"Off')
    elif damage == "gap":
        parts.part_path(blob, 1).write_bytes(parts.Part(1, 6, 4).to_json())
    elif damage == "too_far":
        parts.part_path(blob, 0).write_bytes(parts.Part(0, 0, 5, 6).to_json())
    elif damage == "no_data":
        parts.partial_path(blob).unlink()
    elif damage == "wrong_n":
        parts.part_path(blob, 1).rename(parts.part_path(blob, 7))
    elif damage == "short_data":
        parts.save(blob, parts.Part(1, 5, 5, 5))
        parts.partial_path(blob).write_bytes(b"\0" * 4)
    assert parts.load(blob, 10) is None


def test_part_files_are_kept_by_store_housekeeping(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.ensure()
    blob = store.blob_path("sha256:" + "1" * 64)
    parts.partial_path(blob).write_bytes(b"x")
    parts.save(blob, parts.Part(0, 0, 1))
    for path in blob.parent.iterdir():
        os.utime(path, (0, 0))  # as if written long ago: prune's age limit would not protect them
    store.clean_temporary()
    store.prune(min_age=0)
    assert parts.load(blob, 1) is not None
