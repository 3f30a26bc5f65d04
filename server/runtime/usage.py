"""Usage per API key: requests, tokens and engine time per (key name, model, UTC day).

A shared box needs to know who used what.  The runtime records every generate, chat and embed
request once it reached the engine (:mod:`.generate` at its final event, :mod:`.embed` after
pooling); :meth:`Usage.record` only adds to two dictionaries under a lock, so the event loop
never waits on the disk.  A background task writes the pending day buckets to SQLite every
``FLUSH_SECONDS`` in one transaction (an upsert adding to each row), in a worker thread, and
once more at shutdown: a crash loses at most the last few seconds, and SQLite's journal makes
each flush all-or-nothing.  Rows older than ``KEEP_DAYS`` days are pruned at every flush.

The file is ``<models>/llamita-usage.sqlite``, so usage survives restarts and moves with the
store.  When it cannot be opened (a read-only store) usage is kept in memory only, and said so.
A request from an open server (no keys, owner None) is recorded under the key name ``-``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("llamita.usage")

FILENAME = "llamita-usage.sqlite"
ANONYMOUS = "-"  # the key name of requests made without a key (an open server)
KEEP_DAYS = 400
FLUSH_SECONDS = 2.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    day TEXT NOT NULL, key TEXT NOT NULL, model TEXT NOT NULL,
    requests INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL,
    generated_tokens INTEGER NOT NULL, engine_ns INTEGER NOT NULL,
    PRIMARY KEY (day, key, model)
)
"""
_UPSERT = """
INSERT INTO usage VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (day, key, model) DO UPDATE SET
    requests = requests + excluded.requests,
    prompt_tokens = prompt_tokens + excluded.prompt_tokens,
    cached_tokens = cached_tokens + excluded.cached_tokens,
    generated_tokens = generated_tokens + excluded.generated_tokens,
    engine_ns = engine_ns + excluded.engine_ns
"""
_COUNTERS = ("requests", "prompt_tokens", "cached_tokens", "generated_tokens", "engine_ns")

Bucket = tuple[str, str, str]  # (day, key, model)


@dataclass
class Counts:
    """What one key spent on one model (``engine_ns``: prompt evaluation plus generation)."""

    requests: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    generated_tokens: int = 0
    engine_ns: int = 0

    def add(self, other: Counts) -> None:
        for name in _COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def row(self) -> tuple[int, ...]:
        return tuple(getattr(self, name) for name in _COUNTERS)

    def json(self) -> dict[str, Any]:
        """The API's shape: engine time in seconds."""
        out: dict[str, Any] = asdict(self)
        out["engine_seconds"] = out.pop("engine_ns") / 1e9
        return out


def owner_name(owner: str | None) -> str:
    return ANONYMOUS if owner is None else owner


def utc_day(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d")


def rfc3339(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat().replace("+00:00", "Z")


class Usage:
    """The recorder: totals since this process started in memory, day buckets in SQLite.

    ``path`` None keeps everything in memory (tests of the runtime alone); ``clock`` gives the
    epoch seconds that pick the UTC day (tests inject one to cross midnight).
    """

    def __init__(
        self,
        path: Path | None = None,
        clock: Callable[[], float] = time.time,
        keep_days: int = KEEP_DAYS,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self.path = path
        self.clock = clock
        self.keep_days = keep_days
        self.flush_seconds = flush_seconds
        self.started = clock()
        self._lock = threading.Lock()  # guards the two dictionaries (event loop and flush thread)
        self._db_lock = threading.Lock()  # one flush or query at a time on the connection
        self._totals: dict[tuple[str, str], Counts] = {}
        self._pending: dict[Bucket, Counts] = {}
        self._kept: dict[Bucket, Counts] = {}  # day buckets when there is no database
        self._db: sqlite3.Connection | None = None
        self._deferred = False  # no file yet: it is created by the first flush that has rows
        self._pruned = ""  # the oldest day kept at the last prune: pruning again waits for a new day
        self._task: asyncio.Task[None] | None = None

    # ---- recording (event loop) -----------------------------------------------------------
    def record(
        self,
        owner: str | None,
        model: str,
        *,
        prompt_tokens: int = 0,
        cached_tokens: int = 0,
        generated_tokens: int = 0,
        engine_ns: int = 0,
    ) -> None:
        """One request by ``owner`` (an API key's name, None when open) on ``model``."""
        key = owner_name(owner)
        counts = Counts(1, prompt_tokens, cached_tokens, generated_tokens, engine_ns)
        bucket = (utc_day(self.clock()), key, model)
        with self._lock:
            self._totals.setdefault((key, model), Counts()).add(counts)
            self._pending.setdefault(bucket, Counts()).add(counts)

    # ---- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the database (off the loop) and start the periodic flush."""
        if self.path is not None:
            await asyncio.to_thread(self._open)
        self._task = asyncio.create_task(self._flush_forever(), name="usage-flush")

    async def close(self) -> None:
        """Stop flushing, write what is pending, close the file."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self._close)

    def _open(self) -> None:
        """Open an existing file now; a new one waits for the first rows, so a store no request
        ever ran on stays without it (deleting every model leaves an empty models directory)."""
        assert self.path is not None
        if not self.path.exists():
            self._deferred = True
            return
        self._connect()

    def _connect(self) -> None:
        assert self.path is not None
        self._deferred = False
        try:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute(_SCHEMA)
        except sqlite3.Error as e:
            log.warning("usage is kept in memory only: cannot open %s: %s", self.path, e)
            return
        self._db = db

    def _close(self) -> None:
        with self._db_lock:
            self._flush_locked()
            if self._db is not None:
                self._db.close()
                self._db = None

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            await asyncio.to_thread(self.flush)

    def flush(self) -> None:
        """Write the pending buckets in one transaction and prune old days (a worker thread)."""
        with self._db_lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        oldest = self._oldest_day()
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending and oldest == self._pruned:  # an idle box writes nothing
            return
        if self._deferred and pending:
            self._connect()
        if self._db is None:
            with self._lock:
                for bucket, counts in pending.items():
                    self._kept.setdefault(bucket, Counts()).add(counts)
                self._prune_memory(oldest)
            self._pruned = oldest
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(_UPSERT, [(*b, *c.row()) for b, c in pending.items()])
            self._db.execute("DELETE FROM usage WHERE day < ?", (oldest,))
            self._db.execute("COMMIT")
            self._pruned = oldest
        except sqlite3.Error as e:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            log.warning("usage not written to %s yet (retrying at the next flush): %s", self.path, e)
            with self._lock:  # keep the buckets for the next try
                for bucket, counts in pending.items():
                    self._pending.setdefault(bucket, Counts()).add(counts)

    def _oldest_day(self) -> str:
        return utc_day(self.clock() - (self.keep_days - 1) * 86400)

    def _prune_memory(self, oldest: str) -> None:
        for bucket in [b for b in self._kept if b[0] < oldest]:
            del self._kept[bucket]

    # ---- reading ----------------------------------------------------------------------------
    def totals(self, key: str | None = None, model: str | None = None) -> list[dict[str, Any]]:
        """Per key and model since this process started, sorted by key then model."""
        with self._lock:
            items = [(k, m, Counts(*c.row())) for (k, m), c in self._totals.items()]
        return [
            {"key": k, "model": m, **c.json()}
            for k, m, c in sorted(items, key=lambda item: (item[0], item[1]))
            if _match(k, m, key, model)
        ]

    def days(self, key: str | None = None, model: str | None = None, days: int | None = None) -> list[Any]:
        """Per UTC day, key and model (the last ``days`` days, today included; all kept ones when
        None), oldest first.  Flushes first, so what was just recorded is in the answer."""
        since = utc_day(self.clock() - (days - 1) * 86400) if days else ""
        with self._db_lock:
            self._flush_locked()
            rows = self._rows(since)
        return [
            {"day": d, "key": k, "model": m, **c.json()} for (d, k, m), c in rows if _match(k, m, key, model)
        ]

    def _rows(self, since: str) -> list[tuple[Bucket, Counts]]:
        if self._db is None:
            with self._lock:
                kept = [(b, Counts(*c.row())) for b, c in self._kept.items() if b[0] >= since]
            return sorted(kept, key=lambda item: item[0])
        cursor = self._db.execute(
            "SELECT day, key, model, requests, prompt_tokens, cached_tokens, generated_tokens, engine_ns"
            " FROM usage WHERE day >= ? ORDER BY day, key, model",
            (since,),
        )
        return [((r[0], r[1], r[2]), Counts(*r[3:])) for r in cursor]

    def label_totals(self) -> Iterable[tuple[str, str, Counts]]:
        """(key, model, counts) since start, for ``/metrics``."""
        with self._lock:
            return [(k, m, Counts(*c.row())) for (k, m), c in self._totals.items()]


def _match(k: str, m: str, key: str | None, model: str | None) -> bool:
    return (key is None or k == key) and (model is None or m == model)
