"""Request limits for a server shared over a network: body size, body time, calls per key.

- **Body size.** JSON routes take at most ``LLAMITA_MAX_BODY`` (32 MiB: a long prompt with a
  few base64 images), ``/api/blobs/*`` at most ``LLAMITA_MAX_BLOB_BODY`` (1 TiB).  A declared
  ``Content-Length`` over the limit is refused before a byte of the body is read; a chunked
  body is counted as it arrives and refused as soon as it crosses the limit, so nothing is
  ever buffered beyond it.  413.  Before answering, up to ``DRAIN_BYTES`` more of the body are
  read and thrown away (for at most ``DRAIN_SECONDS``): a client still sending would otherwise
  get a TCP reset instead of the 413, since closing a socket with unread data resets it (Go's
  server lingers for the same reason).  A larger body gets the 413 and a closed connection.
- **Body time.** A client that sends headers and then trickles (or never sends) the body
  would hold a connection and a handler forever: a JSON body must arrive within
  ``LLAMITA_BODY_TIMEOUT`` seconds of the request, and a blob upload may not pause longer
  than that between chunks (a big upload over a slow link is legitimate).  408.
- **Concurrency.** ``LLAMITA_MAX_CONCURRENT_PER_KEY`` caps requests in flight per API key
  (per client address when no keys are configured), so one runaway script cannot fill the
  model's queue for a whole team.  429 with ``Retry-After``; health checks are not counted.
- **Queued requests.** ``LLAMITA_MAX_QUEUE_PER_KEY`` is counted where requests wait, in the
  engine's queue (``engine/scheduler.py``: only it knows waiting from running): the same 429
  with ``Retry-After`` (``OwnerQueueFull``), in the route's own error shape.

Size and time are enforced by wrapping ``receive``: the refusal is raised from inside the
handler's ``await request.body()``/``request.stream()`` and answered by the exception
handlers like any other ``APIError``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llamita.server import config

from . import errors
from .auth import IDENTITY

BLOB_PREFIX = "/api/blobs/"
DRAIN_BYTES = 64 << 20
DRAIN_SECONDS = 5.0


async def _discard(receive: Receive, budget: int) -> None:
    """Read and drop what is left of a refused body, up to ``budget`` bytes and ``DRAIN_SECONDS``."""
    deadline = time.monotonic() + DRAIN_SECONDS
    while budget >= 0:
        try:
            message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0))
        except TimeoutError:
            return
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        budget -= len(message.get("body", b""))


@dataclass(frozen=True)
class Limits:
    max_body: int = 32 << 20
    max_blob_body: int = 1 << 40
    body_timeout: float = 60.0
    max_per_key: int = 0  # 0 = no cap

    @classmethod
    def from_env(cls) -> Limits:
        return cls(
            config.max_body(),
            config.max_blob_body(),
            config.body_timeout(),
            config.max_concurrent_per_key(),
        )


class _Body:
    """``receive`` with a byte budget and a deadline, until the last body chunk has arrived.

    After that (the handler waiting for a disconnect while it streams), calls go straight
    through with no deadline.
    """

    def __init__(self, receive: Receive, limit: int, timeout: float, per_chunk: bool) -> None:
        self.receive = receive
        self.limit = limit
        self.timeout = timeout
        self.per_chunk = per_chunk
        self.deadline = time.monotonic() + timeout
        self.received = 0
        self.complete = False

    async def __call__(self) -> Message:
        if self.complete:
            return await self.receive()
        if self.per_chunk:
            self.deadline = time.monotonic() + self.timeout
        try:
            message = await asyncio.wait_for(self.receive(), max(self.deadline - time.monotonic(), 0))
        except TimeoutError:
            raise errors.body_timeout(self.timeout) from None
        if message["type"] != "http.request":
            self.complete = True
            return message
        self.received += len(message.get("body", b""))
        if self.received > self.limit:
            if message.get("more_body", False):
                await _discard(self.receive, DRAIN_BYTES)
            self.complete = True
            raise errors.body_too_large(self.limit)
        if not message.get("more_body", False):
            self.complete = True
        return message


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class LimitGuard:
    """ASGI middleware applying :class:`Limits`; sits inside :class:`auth.AuthGuard`."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits
        self.in_flight: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        identity = scope.get(IDENTITY)
        cap = self.limits.max_per_key
        if not cap or identity is None:
            await self._bounded(scope, receive, send)
            return
        if self.in_flight[identity] >= cap:
            await errors.as_response(errors.too_many_requests(cap))(scope, receive, send)
            return
        self.in_flight[identity] += 1
        try:
            await self._bounded(scope, receive, send)
        finally:
            self.in_flight[identity] -= 1
            if self.in_flight[identity] <= 0:
                del self.in_flight[identity]

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        blob = scope["path"].startswith(BLOB_PREFIX)
        limit = self.limits.max_blob_body if blob else self.limits.max_body
        length = _content_length(scope)
        if length is not None and length > limit:
            if length <= DRAIN_BYTES:
                await _discard(receive, DRAIN_BYTES)
            await errors.as_response(errors.body_too_large(limit))(scope, receive, send)
            return
        body = _Body(receive, limit, self.limits.body_timeout, per_chunk=blob)
        await self.app(scope, body, send)
