"""``GET /metrics`` and the outermost middleware that counts every answered request.

The middleware sits outside the CORS, auth and limit gates, so their refusals (403, 401,
413, 408, 429) are counted too.  Requests are labelled with the route *template*
(``/api/blobs/{digest}``, never the digest) to keep the label set bounded; a path no
route knows is ``unmatched``.  It also stamps ``X-Llamita-Replica`` on every response when
``LLAMITA_REPLICA_ID`` is set, so a client behind a balancer can see who answered.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llamita.server.runtime.metrics import CONTENT_TYPE, Metrics

REPLICA_HEADER = b"x-llamita-replica"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def metrics_of(request: Request) -> Metrics:
    return request.app.state.metrics


async def metrics(request: Request) -> Response:
    return Response(metrics_of(request).render(), media_type=CONTENT_TYPE)


def _route_label(scope: Scope) -> str:
    route = scope.get("route")
    if route is None:  # refused before routing: find the route it was meant for
        app = scope.get("app")
        for candidate in getattr(getattr(app, "router", None), "routes", ()):
            match, _ = candidate.matches(scope)
            if match is not Match.NONE:
                route = candidate
                break
    return getattr(route, "path", None) or "unmatched"


class Telemetry:
    """ASGI middleware: request counts, in-flight gauge, durations, replica header."""

    def __init__(self, app: ASGIApp, metrics: Metrics, replica: str = "") -> None:
        self.app = app
        self.metrics = metrics
        self.replica = replica.encode("latin-1") if replica else b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client sees if the app raises before answering

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if self.replica:
                    message = {
                        **message,
                        "headers": [*message.get("headers", []), (REPLICA_HEADER, self.replica)],
                    }
            await send(message)

        started = time.monotonic()
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, observed_send)
        finally:
            self.metrics.in_flight.dec()
            route = _route_label(scope)
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.duration.labels(route).observe(time.monotonic() - started)
