"""Browser-facing guards Ollama applies: allowed origins (CORS) and the Host-header check.

A request without ``Origin`` (curl, SDKs, editors) always passes the CORS check.  A
browser request from an origin not in the allowed list gets 403 with an empty body, as
Ollama does; allowed origins get CORS headers and 204 preflights.  When the server listens
on loopback, the Host header must name this machine (anti DNS-rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOW_HEADERS = (
    "Authorization, Content-Type, User-Agent, Accept, X-Requested-With, OpenAI-Beta, "
    "x-stainless-arch, x-stainless-async, x-stainless-custom-poll-interval, x-stainless-helper-method, "
    "x-stainless-lang, x-stainless-os, x-stainless-package-version, x-stainless-poll-helper, "
    "x-stainless-retry-count, x-stainless-runtime, x-stainless-runtime-version, x-stainless-timeout, "
    "X-Llamita-Session"
)
ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"
_SCHEMES = (
    "http://",
    "https://",
    "chrome-extension://",
    "safari-extension://",
    "moz-extension://",
    "ms-browser-extension://",
    "safari-web-extension://",
)


class BadOrigin(ValueError):
    """Raised at start-up for an OLLAMA_ORIGINS entry Ollama would refuse to start with."""


def compile_origins(origins: Iterable[str]) -> list[str]:
    out = []
    for origin in origins:
        origin = origin.strip().lower()
        if not origin:
            continue
        if origin.count("*") > 1:
            raise BadOrigin(f"bad origin: only one * is allowed per origin: {origin}")
        if "*" not in origin and not origin.startswith(_SCHEMES):
            raise BadOrigin(f"bad origin: origins must contain '*' or include http://,https://: {origin}")
        out.append(origin)
    return out


def origin_allowed(origin: str, allowed: list[str]) -> bool:
    origin = origin.lower()
    for entry in allowed:
        if entry == "*" or entry == origin:
            return True
        if "*" in entry:
            prefix, suffix = entry.split("*", 1)
            if origin.startswith(prefix) and origin.endswith(suffix) and len(origin) >= len(entry) - 1:
                return True
    return False


def host_allowed(host_header: str) -> bool:
    """Ollama's allowedHost: loopback/private IPs, localhost, this machine, *.local etc."""
    host = host_header
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    host = host.lower()
    if not host or host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
        return ip.is_loopback or ip.is_private or ip.is_unspecified or ip.is_link_local
    except ValueError:
        pass
    if host == socket.gethostname().lower():
        return True
    return host.endswith((".localhost", ".local", ".internal"))


class OriginGuard:
    """ASGI middleware implementing the CORS and Host checks."""

    def __init__(self, app: ASGIApp, origins: list[str], check_host: bool) -> None:
        self.app = app
        self.origins = compile_origins(origins)
        self.check_host = check_host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if self.check_host and not host_allowed(host):
            await _respond(send, 403, [])
            return
        origin = headers.get("origin")
        if origin is None or self._same_origin(origin, host):
            await self.app(scope, receive, send)
            return
        if not origin_allowed(origin, self.origins):
            await _respond(send, 403, [])
            return
        cors = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"vary", b"Origin"),
        ]
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await _respond(
                send,
                204,
                [
                    *cors,
                    (b"access-control-allow-methods", ALLOW_METHODS.encode()),
                    (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                    (b"access-control-max-age", b"43200"),
                ],
            )
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *cors]}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    @staticmethod
    def _same_origin(origin: str, host: str) -> bool:
        return origin.lower() in (f"http://{host}".lower(), f"https://{host}".lower())


async def _respond(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [*headers, (b"content-length", b"0")]}
    )
    await send({"type": "http.response.body", "body": b""})
