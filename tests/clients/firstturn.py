"""A forwarding proxy that rewrites a client's FIRST request body and passes everything else on.

Why: the embedded 135M model never calls a tool on its own, and an agent such as Claude Code picks
its own sampling fields, so a test of the tool round trip (the server streams a tool call, the
client runs it and sends the result back) needs the first turn forced.  The proxy sits between
the real client and the real server: the first JSON request of the chosen path goes through
``rewrite`` (e.g. adding ``tool_choice``); every other request, and every reply, is forwarded
byte for byte.  It also keeps each request's path and body for the test's assertions.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from serving import serve_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

Json = dict[str, Any]
# Hop-by-hop headers, and what httpx recomputes for the forwarded body.
_DROP_REQUEST = {"host", "content-length", "connection", "transfer-encoding", "accept-encoding"}
_DROP_REPLY = {"content-length", "connection", "transfer-encoding", "content-encoding"}


@dataclass
class Seen:
    """What the client sent, in order: ``(method, path, body or None)``."""

    requests: list[tuple[str, str, Json | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, path: str) -> list[Json]:
        with self.lock:
            return [body for _, p, body in self.requests if p == path and body is not None]


@contextlib.contextmanager
def first_turn_proxy(upstream: str, path: str, rewrite: Callable[[Json], Json]) -> Iterator[tuple[str, Seen]]:
    """Serve the proxy on a free loopback port; yields its base URL and the requests seen."""
    seen = Seen()
    done = {"rewritten": False}
    clients: list[httpx.AsyncClient] = []

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(base_url=upstream, timeout=None) as client:
            clients.append(client)
            yield

    async def forward(request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with seen.lock:
            seen.requests.append((request.method, request.url.path, body))
            first = request.url.path == path and isinstance(body, dict) and not done["rewritten"]
            if first:
                done["rewritten"] = True
        if first:
            raw = json.dumps(rewrite(body)).encode()
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _DROP_REQUEST]
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        client = clients[0]
        upstream_request = client.build_request(request.method, target, content=raw, headers=headers)
        reply = await client.send(upstream_request, stream=True)
        reply_headers = {k: v for k, v in reply.headers.items() if k.lower() not in _DROP_REPLY}

        async def chunks() -> Any:
            try:
                async for chunk in reply.aiter_raw():
                    yield chunk
            finally:
                await reply.aclose()

        return StreamingResponse(chunks(), status_code=reply.status_code, headers=reply_headers)

    methods = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"]
    app = Starlette(routes=[Route("/{rest:path}", forward, methods=methods)], lifespan=lifespan)
    with serve_app(app) as url:
        yield url, seen
