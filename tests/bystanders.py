"""Bystanders for isolation tests: greedy requests whose output must not depend on neighbours.

A bystander is a greedy (temperature 0, fixed ``num_predict``) native stream.  Its *solo*
output is measured first, alone on the server; :meth:`Bystanders.run` then starts the
bystanders one after the other, waits for each one's first streamed line (so it is decoding),
runs the neighbour coroutines concurrently, and returns everything once all have finished.
The test then asserts the bystanders' output equals the solo output.

Why the bystander prompts are counting sequences: greedy output is *not* bit-stable under
batching in llama.cpp's CPU kernels.  A decode step that shares its ubatch with a neighbour's
prefill (>= 64 tokens) takes the tiled flash-attention kernel (Q in f32 instead of f16), and
the int8 activation quantisation amplifies the difference: with SmolLM2 we measured a drift of
up to 0.4 nats in a bystander's log-probabilities and flips wherever the top two tokens were
closer than ~0.2 nats.  So each bystander continues a sequence whose greedy path keeps a
top-1/top-2 margin of at least ``MIN_MARGIN`` at every step (checked on the solo run): a flip
then needs a perturbation several times the largest numerical drift, which a leak or a wiped
cache produces and batching does not.

:class:`VersionPoller` polls ``/api/version`` on its own connection for the duration of a
scenario and records every failure and the slowest answer: a request that blocks the event
loop freezes every client, ``/api/version`` included.

Nothing here waits on time: every wait is for an event (a line, a finished request), and
timeouts are only hang guards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

MODEL = "smollm2:135m"
# Only a guard against a hung server: a read (one line) that takes longer is a failure.
HANG_GUARD_S = 180.0
NORMAL_DONE = ("stop", "length")
# The smallest top-1/top-2 log-probability gap a bystander's solo path may have (see above).
MIN_MARGIN = 0.5


@dataclass
class Reply:
    """What a native (NDJSON or single JSON) request got back."""

    status: int
    text: str = ""  # generated content (``response`` or ``message.content``), concatenated
    final: dict[str, Any] | None = None  # the ``done: true`` object
    error: str | None = None  # a status error's message, or an in-band ``{"error"}`` line
    logprobs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finished_normally(self) -> bool:
        """200, no error, and a last object with ``done: true`` and reason stop/length."""
        return (
            self.status == 200
            and self.error is None
            and self.final is not None
            and self.final.get("done") is True
            and self.final.get("done_reason") in NORMAL_DONE
        )

    def describe(self) -> str:
        reason = self.final.get("done_reason") if self.final else None
        return f"status={self.status} error={self.error!r} done_reason={reason!r} text={self.text[:80]!r}"


def _content(obj: dict[str, Any]) -> str:
    if "message" in obj and isinstance(obj["message"], dict):
        return str(obj["message"].get("content") or "")
    return str(obj.get("response") or "")


def _error_of(payload: Any) -> str | None:
    """An Ollama (``{"error": "..."}``) or OpenAI (``{"error": {"message": ...}}``) error text."""
    if not isinstance(payload, dict) or "error" not in payload:
        return None
    error = payload["error"]
    if isinstance(error, dict):
        return str(error.get("message"))
    return str(error)


def error_message(response: httpx.Response) -> str | None:
    """The error text of a finished response, or None when its body carries none."""
    try:
        return _error_of(response.json())
    except ValueError:
        return None


async def native(
    http: httpx.AsyncClient,
    url: str,
    path: str,
    body: dict[str, Any] | bytes,
    started: asyncio.Event | None = None,
) -> Reply:
    """POST a native generate/chat request (stream or not) and collect its reply.

    ``body`` may be raw bytes (for JSON that ``json.dumps`` does not write, e.g. NaN).
    ``started`` is set at the first line, or when the request ends without one.
    """
    kwargs: dict[str, Any] = {"content": body} if isinstance(body, bytes) else {"json": body}
    headers = {"content-type": "application/json"}
    reply = Reply(status=0)
    try:
        async with http.stream("POST", url + path, headers=headers, **kwargs) as response:
            reply.status = response.status_code
            if response.status_code != 200:
                await response.aread()
                reply.error = error_message(response) or response.text[:200]
                return reply
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                if started is not None:
                    started.set()
                obj = json.loads(line)
                if _error_of(obj) is not None:
                    reply.error = _error_of(obj)
                    continue
                reply.text += _content(obj)
                reply.logprobs += obj.get("logprobs") or []
                if obj.get("done"):
                    reply.final = obj
    finally:
        if started is not None:
            started.set()
    return reply


@dataclass(frozen=True)
class Bystander:
    """One greedy native stream: ``request`` is the body without ``model`` and ``options``."""

    path: str
    request: dict[str, Any]
    num_predict: int

    def body(self) -> dict[str, Any]:
        options = {"temperature": 0, "num_predict": self.num_predict}
        return {"model": MODEL, **self.request, "options": options, "logprobs": True, "top_logprobs": 2}


def default_bystanders(num_predict: int) -> tuple[Bystander, Bystander]:
    """Two different counting prompts, one per native route (margins >= 0.87 nats, SmolLM2)."""
    count = "Count from 1 to 50 with commas: 1, 2, 3,"
    return (
        Bystander("/api/generate", {"prompt": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", "raw": True}, num_predict),
        Bystander("/api/chat", {"messages": [{"role": "user", "content": count}]}, num_predict),
    )


def _margin(entry: dict[str, Any]) -> float:
    """top-1 minus top-2 log-probability at one generated token."""
    top = sorted((t["logprob"] for t in entry.get("top_logprobs") or []), reverse=True)
    return top[0] - top[1] if len(top) > 1 else float("inf")


@dataclass
class Bystanders:
    """The bystanders of a test module and their solo replies (measured once)."""

    members: tuple[Bystander, ...]
    solo: list[Reply] = field(default_factory=list)

    async def measure_solo(self, http: httpx.AsyncClient, url: str) -> None:
        """Each bystander alone, one after the other.  Each must run to ``num_predict`` (so it
        overlaps its neighbours) along a path with no near-tie (so batching cannot flip it)."""
        self.solo = []
        for member in self.members:
            reply = await native(http, url, member.path, member.body())
            assert reply.finished_normally, f"solo {member.path}: {reply.describe()}"
            assert reply.final is not None and reply.final["done_reason"] == "length", reply.describe()
            margins = [_margin(e) for e in reply.logprobs]
            assert len(margins) == member.num_predict, f"solo {member.path}: logprobs {len(margins)}"
            assert min(margins) >= MIN_MARGIN, (
                f"solo {member.path}: a near-tie ({min(margins):.3f} nats at token "
                f"{margins.index(min(margins))}) makes this bystander flaky under batching"
            )
            self.solo.append(reply)

    async def run(
        self, http: httpx.AsyncClient, url: str, *neighbours: Callable[[], Awaitable[Any]]
    ) -> tuple[list[Reply], list[Any]]:
        """Start the bystanders (each once the previous one streams), then the neighbours;
        wait for all.  A neighbour that raises is returned as its exception, so the
        bystanders' result is still checked."""
        streams = []
        for member in self.members:
            started = asyncio.Event()
            streams.append(asyncio.ensure_future(native(http, url, member.path, member.body(), started)))
            await started.wait()
        outcomes = await asyncio.gather(*(n() for n in neighbours), return_exceptions=True)
        replies = await asyncio.gather(*streams)
        return list(replies), list(outcomes)

    def check(self, replies: list[Reply]) -> list[str]:
        """Problems with the bystanders' replies (empty when each equals its solo output)."""
        problems = []
        for member, solo, reply in zip(self.members, self.solo, replies, strict=True):
            if not reply.finished_normally:
                problems.append(f"bystander {member.path} did not finish: {reply.describe()}")
            elif reply.text != solo.text:
                problems.append(f"bystander {member.path} changed: {_divergence(solo, reply)}")
        return problems


def _divergence(solo: Reply, now: Reply) -> str:
    """Where two greedy runs part, with the solo margin and the log-probabilities there."""
    for i, (a, b) in enumerate(zip(solo.logprobs, now.logprobs, strict=False)):
        if a["token"] != b["token"]:
            return (
                f"token {i}: solo {a['token']!r} ({a['logprob']:.3f}, margin {_margin(a):.3f}) "
                f"now {b['token']!r} ({b['logprob']:.3f})\n  solo: {solo.text!r}\n  now:  {now.text!r}"
            )
    return f"\n  solo: {solo.text!r}\n  now:  {now.text!r}"


class VersionPoller:
    """Polls ``GET /api/version`` until stopped; records failures and the slowest answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.failures: list[str] = []
        self.latencies: list[float] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def max_latency(self) -> float:
        return max(self.latencies, default=0.0)

    async def _poll(self) -> None:
        async with httpx.AsyncClient(timeout=HANG_GUARD_S) as http:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    r = await http.get(self.url + "/api/version")
                    if r.status_code != 200 or "version" not in r.json():
                        self.failures.append(f"{r.status_code} {r.text[:100]}")
                except (httpx.HTTPError, ValueError) as e:
                    self.failures.append(f"{type(e).__name__}: {e}")
                self.latencies.append(time.monotonic() - started)
                # Pacing only (not synchronisation): keep the poll from eating a core.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), 0.02)

    async def __aenter__(self) -> VersionPoller:
        self._task = asyncio.ensure_future(self._poll())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task


@contextlib.asynccontextmanager
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client with room for many concurrent streams and only a hang guard as timeout."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=HANG_GUARD_S, limits=limits) as http:
        yield http
