"""The usage recorder: UTC day buckets by an injected clock, the SQLite file across instances,
pruning, filters, the in-memory fallback; and what the runtime records (a fake engine)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fakeengine import FakeEngines

from ggufgen import write_tiny_gguf
from llamita.server.model.create import import_gguf
from llamita.server.runtime.generate import Runtime
from llamita.server.runtime.metrics import Metrics
from llamita.server.runtime.requests import EmbedRequest, GenerateRequest
from llamita.server.runtime.runners import Runners
from llamita.server.runtime.usage import ANONYMOUS, FILENAME, Usage
from llamita.server.store.blobs import Store

MODEL = "smollm2:135m"


class Clock:
    def __init__(self, when: str) -> None:
        self.now = dt.datetime.fromisoformat(when).timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_requests_fall_in_the_utc_day_they_ended(tmp_path: Path) -> None:
    clock = Clock("2026-12-03T23:59:59+00:00")
    usage = Usage(tmp_path / FILENAME, clock=clock)
    usage._open()
    usage.record(
        "alice", MODEL, prompt_tokens=10, cached_tokens=2, generated_tokens=5, engine_ns=1_500_000_000
    )
    clock.advance(2)  # past midnight UTC
    usage.record("alice", MODEL, prompt_tokens=1, generated_tokens=1, engine_ns=500_000_000)
    usage.record(None, MODEL, prompt_tokens=3)
    days = usage.days()
    assert [(d["day"], d["key"], d["requests"]) for d in days] == [
        ("2026-12-03", "alice", 1),
        ("2026-12-04", ANONYMOUS, 1),
        ("2026-12-04", "alice", 1),
    ]
    assert days[0] == {
        "day": "2026-12-03",
        "key": "alice",
        "model": MODEL,
        "requests": 1,
        "prompt_tokens": 10,
        "cached_tokens": 2,
        "generated_tokens": 5,
        "engine_seconds": 1.5,
    }
    assert [d["day"] for d in usage.days(days=1)] == ["2026-12-04", "2026-12-04"]
    assert usage.totals(key="alice") == [
        {
            "key": "alice",
            "model": MODEL,
            "requests": 2,
            "prompt_tokens": 11,
            "cached_tokens": 2,
            "generated_tokens": 6,
            "engine_seconds": 2.0,
        }
    ]
    assert usage.totals(model="other") == []
    usage._close()


def test_a_local_day_is_not_the_bucket(tmp_path: Path) -> None:
    """The day is UTC whatever the box's zone: 01:00 at +02:00 is the previous UTC day."""
    usage = Usage(None, clock=Clock("2026-12-04T01:00:00+02:00"))
    usage.record("bob", MODEL)
    assert [d["day"] for d in usage.days()] == ["2026-12-03"]


def test_the_file_outlives_the_instance_and_rows_add_up(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    clock = Clock("2026-12-03T12:00:00+00:00")

    async def session(prompt: int) -> None:
        usage = Usage(path, clock=clock)
        await usage.start()
        usage.record("alice", MODEL, prompt_tokens=prompt, generated_tokens=1)
        await usage.close()  # the shutdown flush

    asyncio.run(session(4))
    asyncio.run(session(6))
    reader = Usage(path, clock=clock)
    reader._open()
    (row,) = reader.days()
    assert (row["requests"], row["prompt_tokens"], row["generated_tokens"]) == (2, 10, 2)
    assert reader.totals() == []  # totals are this process's
    reader._close()


def test_a_server_that_ran_nothing_leaves_no_file(tmp_path: Path) -> None:
    """Deleting every model must leave an empty models directory: the file waits for its first row."""
    path = tmp_path / FILENAME

    async def idle() -> None:
        usage = Usage(path)
        await usage.start()
        usage.flush()
        assert usage.days() == []
        await usage.close()

    asyncio.run(idle())
    assert not path.exists()

    async def busy() -> None:
        usage = Usage(path)
        await usage.start()
        usage.record("alice", MODEL, prompt_tokens=3)
        await usage.close()

    asyncio.run(busy())
    assert path.exists()


def test_a_flush_is_visible_to_another_connection_at_once(tmp_path: Path) -> None:
    """What a crash would keep: everything flushed, committed in one transaction."""
    path = tmp_path / FILENAME
    usage = Usage(path, clock=Clock("2026-12-03T12:00:00+00:00"))
    usage._open()
    usage.record("alice", MODEL, prompt_tokens=7)
    usage.record("bob", MODEL, prompt_tokens=1)
    usage.flush()
    with sqlite3.connect(path) as other:
        rows = other.execute("SELECT key, requests, prompt_tokens FROM usage ORDER BY key").fetchall()
    assert rows == [("alice", 1, 7), ("bob", 1, 1)]
    usage._close()


def test_days_older_than_the_window_are_pruned(tmp_path: Path) -> None:
    clock = Clock("2026-01-01T12:00:00+00:00")
    usage = Usage(tmp_path / FILENAME, clock=clock, keep_days=3)
    usage._open()
    usage.record("alice", MODEL)
    usage.flush()
    clock.advance(2 * 86400)  # 2026-01-03: the first day is still one of the last 3
    usage.record("alice", MODEL)
    assert [d["day"] for d in usage.days()] == ["2026-01-01", "2026-01-03"]
    clock.advance(86400)  # 2026-01-04: 2026-01-01 falls out
    usage.flush()
    assert [d["day"] for d in usage.days()] == ["2026-01-03"]
    usage._close()


def test_in_memory_without_a_file_prunes_too() -> None:
    clock = Clock("2026-01-01T12:00:00+00:00")
    usage = Usage(None, clock=clock, keep_days=1)
    usage.record("alice", MODEL)
    assert len(usage.days()) == 1
    clock.advance(86400)
    usage.record("alice", MODEL)
    assert [d["day"] for d in usage.days()] == ["2026-01-02"]


def test_an_unwritable_store_keeps_usage_in_memory(tmp_path: Path) -> None:
    usage = Usage(tmp_path / "missing" / FILENAME, clock=Clock("2026-12-03T12:00:00+00:00"))
    usage._open()  # the directory does not exist: logged, not raised
    usage.record("alice", MODEL, prompt_tokens=2)
    assert usage.days()[0]["prompt_tokens"] == 2


# ---- recorded by the runtime (a fake engine: the counts are the Done event's) -----------------


@pytest.fixture
def engines() -> FakeEngines:
    return FakeEngines()


@pytest.fixture
def runtime(store: Store, tmp_path: Path, engines: FakeEngines) -> Runtime:
    import_gguf(store, "tiny", write_tiny_gguf(tmp_path / "tiny.gguf"))
    runners = Runners(engines)
    return Runtime(store, runners, Metrics(runners), Usage(None))


def test_the_final_event_is_recorded_under_the_owner(runtime: Runtime) -> None:
    async def run() -> list[dict[str, Any]]:
        try:
            events = runtime.generate(GenerateRequest(model="tiny", prompt="abc", raw=True), owner="alice")
            chunks = [chunk async for chunk in events]
            await runtime.embed(EmbedRequest(model="tiny", inputs=["ab", "c"]), owner="alice")
            return chunks
        finally:
            await runtime.runners.close()

    final = asyncio.run(run())[-1]
    (row,) = runtime.usage.totals()
    assert row == {
        "key": "alice",
        "model": "tiny:latest",
        "requests": 2,
        "prompt_tokens": final["prompt_eval_count"] + 5,  # the embed's: BOS + 2, BOS + 1
        "cached_tokens": 0,
        "generated_tokens": final["eval_count"],
        "engine_seconds": (final["prompt_eval_duration"] + final["eval_duration"]) / 1e9,
    }


def test_a_stream_the_client_left_counts_its_tokens(runtime: Runtime, engines: FakeEngines) -> None:
    engines.hang_after = 1  # one token, then a long answer the client does not wait for

    async def run() -> None:
        try:
            events = runtime.generate(GenerateRequest(model="tiny", prompt="abc", raw=True))
            async with contextlib.aclosing(events):
                async for _ in events:
                    break  # the client is gone after the first chunk
        finally:
            await runtime.runners.close()

    asyncio.run(run())
    (row,) = runtime.usage.totals()
    assert (row["key"], row["requests"], row["generated_tokens"]) == (ANONYMOUS, 1, 1)
