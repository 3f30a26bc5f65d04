"""parts.py: the part plan and the resumable state on disk, in Ollama's file layout.

The last tests write that state by hand, as Ollama would leave it, and pull from a real
docker-registry through a counting proxy: only the missing bytes may cross the wire.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llamita.server.registry import parts
from llamita.server.registry.client import Policy
from llamita.server.registry.errors import CorruptDownload
from llamita.server.registry.pull import pull
from llamita.server.store.blobs import Store

from .regkit import Registry, drain, leave_partial, name_via, published, range_gets, store_files


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


@pytest.mark.parametrize(
    "doc",
    [
        b'{"N":0,"Offset":0,"Size":5}',  # Completed missing
        b'{"N":0,"Offset":-1,"Size":5,"Completed":0}',
        b'{"N":0,"Offset":0,"Size":true,"Completed":0}',
        b'{"N":0,"Offset":0,"Size":"5","Completed":0}',
        b'{"N":0,"Offset":0,"Size":5.0,"Completed":0}',
    ],
)
def test_part_json_refuses_what_go_would_not_write(doc: bytes) -> None:
    with pytest.raises(ValueError):
        parts.Part.from_json(doc)


def test_part_json_round_trip() -> None:
    part = parts.Part(3, 300, 100, 42)
    assert part.to_json() == b'{"N":3,"Offset":300,"Size":100,"Completed":42}\n'
    assert parts.Part.from_json(part.to_json()) == part
    assert (part.start, part.end, part.done) == (342, 400, False)
    assert parts.Part(0, 0, 5, 5).done


def test_part_files_are_only_this_blobs_numbered_states(tmp_path: Path) -> None:
    blob = tmp_path / ("sha256-" + "a" * 64)
    other = tmp_path / ("sha256-" + "b" * 64)
    for path in [
        parts.part_path(blob, 0),
        parts.part_path(blob, 12),
        parts.partial_path(blob),  # the data file, not a state
        blob.with_name(blob.name + "-partial-x"),
        parts.part_path(other, 0),
    ]:
        path.write_bytes(b"{}")
    assert sorted(p.name for p in parts.part_files(blob)) == sorted(
        [parts.part_path(blob, 0).name, parts.part_path(blob, 12).name]
    )
    parts.discard(blob)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [blob.name + "-partial-x", parts.part_path(other, 0).name]
    )


def test_bytes_on_disk_counts_allocated_blocks_not_length(tmp_path: Path) -> None:
    blob = tmp_path / ("sha256-" + "c" * 64)
    assert parts.bytes_on_disk(blob) == 0  # nothing yet
    with open(parts.partial_path(blob), "wb") as f:
        f.truncate(64_000_000)  # sparse, as a download reserves its file
    assert parts.bytes_on_disk(blob) < 1_000_000
    with open(parts.partial_path(blob), "r+b") as f:
        f.write(os.urandom(2_000_000))
        f.flush()
        os.fsync(f.fileno())
    assert 2_000_000 <= parts.bytes_on_disk(blob) < 4_000_000


# ---- state left by another program, resumed against a real registry ----------------------
SIZE = 8_000_000
FOUR_PARTS = Policy(min_part=2_000_000, parts=4, backoff=0.01, sync_interval=0.1)


def test_a_partial_in_ollamas_layout_is_resumed_from_its_own_split(
    store: Store, registry: Registry, proxy, tmp_path
) -> None:
    """Eight 1 MB parts (not the pull's own 4 x 2 MB): the saved split is used as it is."""
    digest = published(registry, tmp_path, SIZE)
    data = registry.blob_data(digest).read_bytes()
    plan = parts.plan(SIZE, parts=8, min_size=1_000_000)
    plan[0].completed = plan[1].completed = 1_000_000
    plan[2].completed = 500_000
    blob = leave_partial(store, digest, data, plan)
    assert parts.load(blob, SIZE) == plan

    counting = proxy(registry.port)
    assert drain(pull(store, name_via(counting.host), insecure=True, policy=FOUR_PARTS))[-1] == {
        "status": "success"
    }
    assert sorted(range_gets(counting.exchanges, digest)) == sorted(
        ["bytes=2500000-2999999"] + [f"bytes={n}000000-{n}999999" for n in range(3, 8)]
    )
    missing = SIZE - 2_500_000
    assert missing <= counting.blob_bytes() <= missing + 1_000  # + the config blob and a 1-byte probe
    store.verify_blob(digest)
    assert not [f for f in store_files(store) if "partial" in f]


def test_state_that_does_not_cover_the_blob_is_started_over(
    store: Store, registry: Registry, proxy, tmp_path
) -> None:
    digest = published(registry, tmp_path, SIZE)
    data = registry.blob_data(digest).read_bytes()
    plan = parts.plan(SIZE, parts=4, min_size=2_000_000)
    plan[0].completed = 2_000_000
    blob = leave_partial(store, digest, data, plan[:3])  # part 3 is missing: a gap at the end
    assert parts.load(blob, SIZE) is None

    counting = proxy(registry.port)
    assert drain(pull(store, name_via(counting.host), insecure=True, policy=FOUR_PARTS))[-1] == {
        "status": "success"
    }
    assert sorted(range_gets(counting.exchanges, digest)) == [
        f"bytes={n * 2_000_000}-{(n + 1) * 2_000_000 - 1}" for n in range(4)
    ]
    assert counting.blob_bytes() >= SIZE
    store.verify_blob(digest)


def test_state_is_trusted_for_offsets_only_the_digest_decides(
    store: Store, registry: Registry, proxy, tmp_path
) -> None:
    """State claiming every byte, over wrong bytes: nothing is fetched, the check fails, and
    the partial is gone so that the next pull starts clean and succeeds."""
    digest = published(registry, tmp_path, SIZE)
    wrong = bytearray(registry.blob_data(digest).read_bytes())
    wrong[SIZE // 2] ^= 0xFF
    plan = parts.plan(SIZE, parts=4, min_size=2_000_000)
    for part in plan:
        part.completed = part.size
    blob = leave_partial(store, digest, bytes(wrong), plan)

    counting = proxy(registry.port)
    with pytest.raises(CorruptDownload, match=f"want {digest}"):
        drain(pull(store, name_via(counting.host), insecure=True, policy=FOUR_PARTS))
    assert range_gets(counting.exchanges, digest) == []
    assert parts.load(blob, SIZE) is None and not parts.partial_path(blob).exists()
    assert not parts.part_files(blob)

    assert drain(pull(store, name_via(counting.host), insecure=True, policy=FOUR_PARTS))[-1] == {
        "status": "success"
    }
    store.verify_blob(digest)
