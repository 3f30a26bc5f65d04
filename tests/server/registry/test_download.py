"""download.py: resumable parallel parts, verification before admission, shared downloads.

Against a real docker-registry.  Blob bytes are counted by a proxy in front of it, so
"resumed" means fewer bytes crossed the wire, not just that the pull succeeded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from llamita.server.registry import parts
from llamita.server.registry.client import Policy
from llamita.server.registry.download import Downloads
from llamita.server.registry.errors import CorruptDownload
from llamita.server.registry.pull import pull
from llamita.server.store.blobs import Store
from llamita.server.store.names import parse_name

from .regkit import (
    Action,
    Exchange,
    Registry,
    drain,
    name_via,
    published,
    range_gets,
    store_files,
    via,
)

SIZE = 32_000_000
FAST = Policy(backoff=0.01, sync_interval=0.1)

_PULL_SCRIPT = """
import sys
from llamita.server.store.names import parse_name
from llamita.server.registry.client import Policy
from llamita.server.registry.pull import pull
from llamita.server.store.blobs import Store

policy = Policy(min_part=4_000_000, parts=4, sync_interval=0.1)
for event in pull(Store(sys.argv[1]), parse_name(sys.argv[2]), insecure=True, policy=policy):
    print(event, flush=True)
"""


def test_pull_resumes_after_kill_9_and_a_server_restart(
    store: Store, registry: Registry, proxy, tmp_path, request: pytest.FixtureRequest
) -> None:
    digest = published(registry, tmp_path, SIZE)
    slow = proxy(registry.port, lambda ex: Action(rate=3_000_000) if ex.is_blob_get else None)
    child = subprocess.Popen(
        [sys.executable, "-c", _PULL_SCRIPT, str(store.root), via(slow.host)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    blob = store.blob_path(digest)
    deadline = time.monotonic() + 30
    on_disk = 0
    while on_disk < SIZE // 2:
        assert child.poll() is None, child.stderr.read() if child.stderr else ""
        assert time.monotonic() < deadline, "the first pull made no progress"
        time.sleep(0.05)
        saved = parts.load(blob, SIZE)
        on_disk = sum(p.completed for p in saved) if saved else 0
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stderr.close()  # type: ignore[union-attr]

    saved = parts.load(blob, SIZE)
    assert saved is not None and len(saved) == 4  # 32 MB in 4 parts of 8 MB, in Ollama's file layout
    on_disk = sum(p.completed for p in saved)
    assert SIZE // 2 <= on_disk < SIZE
    assert not store.has_blob(digest) and store.get(parse_name(via(slow.host))) is None

    # A new server over the same store: start-up clean-up and pruning must keep the partial.
    counting = proxy(registry.port)
    running = request.getfixturevalue("empty_server")  # started now, over the same store
    assert parts.load(blob, SIZE) == saved
    reply = httpx.post(
        running.url + "/api/pull",
        json={"model": via(counting.host), "insecure": True, "stream": False},
        timeout=60,
    )
    assert reply.status_code == 200 and reply.json() == {"status": "success"}, reply.text

    fetched = counting.blob_bytes()
    saving = 1 - fetched / SIZE
    print(f"\nresume after kill -9: kept {on_disk} of {SIZE} bytes, fetched {fetched} ({saving:.0%} saved)")
    assert SIZE - on_disk <= fetched <= SIZE - on_disk + 2_000_000
    # Every unfinished part was asked for from the byte its saved state reached, no earlier.
    assert sorted(range_gets(counting.exchanges, digest)) == sorted(
        f"bytes={p.start}-{p.end - 1}" for p in saved if not p.done
    )
    store.verify_blob(digest)
    assert not [f for f in store_files(store) if "partial" in f]


def test_dropped_connection_resumes_within_the_same_pull(
    store: Store, registry: Registry, proxy, tmp_path
) -> None:
    digest = published(registry, tmp_path, SIZE)
    cuts: list[Exchange] = []

    def cut_once(ex: Exchange) -> Action | None:
        if ex.is_blob_get and ex.headers.get("range") != "bytes=0-0" and not cuts:
            cuts.append(ex)
            return Action(cut_after=SIZE // 2)
        return None

    flaky = proxy(registry.port, cut_once)
    events = drain(pull(store, name_via(flaky.host), insecure=True, policy=FAST))
    assert events[-1] == {"status": "success"}
    ranges = range_gets(flaky.exchanges, digest)
    assert ranges[0] == f"bytes=0-{SIZE - 1}"
    resumed_at = int(ranges[1][6:].split("-")[0])
    assert SIZE // 2 - 1_000_000 <= resumed_at <= SIZE // 2  # picked up where the cut left it
    assert ranges[1].endswith(f"-{SIZE - 1}") and len(ranges) == 2
    assert flaky.blob_bytes() < SIZE + 100_000
    store.verify_blob(digest)


def test_parallel_range_parts(store: Store, registry: Registry, proxy, tmp_path) -> None:
    digest = published(registry, tmp_path, size=24_000_000)
    counting = proxy(registry.port)
    policy = Policy(min_part=1_000_000, parts=6, backoff=0.01)
    assert (
        drain(pull(store, name_via(counting.host), insecure=True, policy=policy))[-1]["status"] == "success"
    )
    ranges = sorted(range_gets(counting.exchanges, digest), key=lambda r: int(r[6:].split("-")[0]))
    assert ranges == [f"bytes={i * 4_000_000}-{(i + 1) * 4_000_000 - 1}" for i in range(6)]
    assert counting.blob_bytes() < 24_000_000 + 100
    store.verify_blob(digest)


def test_corrupted_blob_fails_clearly_and_leaves_the_store_unchanged(
    empty_server, registry: Registry, tmp_path
) -> None:
    digest = published(registry, tmp_path, size=2_000_000)
    data = registry.blob_data(digest)
    raw = bytearray(data.read_bytes())
    raw[1000] ^= 0xFF
    data.write_bytes(bytes(raw))
    before = store_files(empty_server.store)

    with httpx.stream(
        "POST",
        empty_server.url + "/api/pull",
        json={"model": f"{registry.host}/team/big:1", "insecure": True},
    ) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert [line.get("status") for line in lines[:1]] == ["pulling manifest"]
    assert lines[-2] == {"status": "verifying sha256 digest"}
    assert lines[-1]["error"].startswith(
        f"digest mismatch, file must be downloaded again: want {digest}, got sha256:"
    )
    assert_unchanged(empty_server.store, before, digest)

    with pytest.raises(CorruptDownload):
        drain(pull(empty_server.store, name_via(registry.host), insecure=True))
    assert_unchanged(empty_server.store, before, digest)


def assert_unchanged(store: Store, before: set[str], bad_digest: str) -> None:
    """No manifest and no blob were added, and nothing of the bad blob is left on disk.

    The config blob, which downloaded fine, may stay as a finished partial download for the
    next pull to reuse: that is scratch space, not the store's content.
    """
    after = store_files(store)
    assert {f for f in after if "-partial" not in f} == before
    assert not [f for f in after if bad_digest[7:] in f]


def test_concurrent_pulls_share_one_download(empty_server, registry: Registry, proxy, tmp_path) -> None:
    digest = published(registry, tmp_path, size=16_000_000)
    slow = proxy(registry.port, lambda ex: Action(rate=16_000_000) if ex.is_blob_get else None)
    replies: list[httpx.Response] = []

    def one() -> None:
        replies.append(
            httpx.post(
                empty_server.url + "/api/pull",
                json={"model": via(slow.host), "insecure": True, "stream": False},
                timeout=60,
            )
        )

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.2)  # the second one joins a download that is under way
    for t in threads:
        t.join()
    assert [r.json() for r in replies] == [{"status": "success"}] * 2
    assert slow.blob_bytes() < 16_000_000 * 1.1  # one download, not two
    empty_server.store.verify_blob(digest)


def test_abandoned_pull_keeps_its_partial_for_the_next_one(
    store: Store, registry: Registry, proxy, tmp_path
) -> None:
    digest = published(registry, tmp_path, SIZE)
    slow = proxy(registry.port, lambda ex: Action(rate=16_000_000) if ex.is_blob_get else None)
    events = pull(store, name_via(slow.host), insecure=True, policy=FAST)
    for event in events:
        if int(event.get("completed") or 0) > SIZE // 4:
            break
    events.close()  # the client went away: the last waiter cancels the download
    blob = store.blob_path(digest)
    deadline = time.monotonic() + 10
    while any(job.thread.is_alive() for job in Downloads(store).running()) and time.monotonic() < deadline:
        time.sleep(0.02)
    saved = parts.load(blob, SIZE)
    assert saved is not None and SIZE // 4 <= sum(p.completed for p in saved) < SIZE

    counting = proxy(registry.port)
    assert drain(pull(store, name_via(counting.host), insecure=True, policy=FAST))[-1]["status"] == "success"
    assert counting.blob_bytes() <= SIZE - SIZE // 4 + 100
    store.verify_blob(digest)


def test_http_client_disconnect_stops_the_download_and_keeps_it(
    empty_server, registry: Registry, proxy, tmp_path
) -> None:
    """The last waiter leaving (here: the HTTP client hanging up) cancels; the bytes stay."""
    digest = published(registry, tmp_path, SIZE)
    slow = proxy(registry.port, lambda ex: Action(rate=8_000_000) if ex.is_blob_get else None)
    body = {"model": via(slow.host), "insecure": True}
    with httpx.stream("POST", empty_server.url + "/api/pull", json=body, timeout=30) as response:
        for line in response.iter_lines():
            if int(json.loads(line).get("completed") or 0) > SIZE // 4:
                break
    deadline = time.monotonic() + 10
    while any(job.thread.is_alive() for job in Downloads(empty_server.store).running()):
        assert time.monotonic() < deadline, "the download kept running after its only client left"
        time.sleep(0.05)
    saved = parts.load(empty_server.store.blob_path(digest), SIZE)
    assert saved is not None and SIZE // 4 <= sum(p.completed for p in saved) < SIZE
    assert not empty_server.store.has_blob(digest)
