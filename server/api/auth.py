"""Optional API keys: ``Authorization: Bearer <key>`` (or ``x-api-key: <key>``) on every route
but the health checks.

Ollama has no incoming authentication (users put a proxy in front, and many do not); llamita
checks a bearer key when ``LLAMITA_API_KEYS`` or ``LLAMITA_API_KEYS_FILE`` is set, and is
open otherwise, so a default install behaves exactly like Ollama.  The bearer scheme is what
Continue's ``apiKey``, Llama Coder's ``bearerToken`` and ollama-python's ``OLLAMA_API_KEY`` send;
``x-api-key`` is what the Anthropic SDKs and Claude Code's ``ANTHROPIC_API_KEY`` send.  A refusal
on Anthropic's routes (``/v1/messages...``) has Anthropic's error shape, so the SDKs raise their
``AuthenticationError``.

Keys file grammar (UTF-8)::

    # a comment line; blank lines are ignored
    key-for-alice
    key-for-bob        # a trailing comment after whitespace

The file is re-read after SIGHUP (``llamita serve`` installs the handler) and when its mtime
changes (checked at most once a second), so rotating a key needs no restart.  Keys are
compared with ``hmac.compare_digest`` against every configured key and are never logged;
the limits layer knows a caller only by a short hash of its key.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from llamita.server import config

from . import errors
from .anthropic.response import anthropic_error

log = logging.getLogger("llamita.auth")

# Routes a load balancer or an uptime probe hits without credentials (method, path).
PUBLIC = frozenset({("GET", "/"), ("HEAD", "/"), ("GET", "/api/version"), ("HEAD", "/api/version")})
METRICS_PATH = "/metrics"
ANTHROPIC_PATHS = "/v1/messages"  # the prefix of the routes that answer in Anthropic's error shape
IDENTITY = "llamita.identity"  # scope key: who the limits layer counts this request against
OWNER = "llamita.owner"  # scope key: the name of the API key the request came with (absent when open)


class KeysFileError(OSError):
    """Raised at start-up when ``LLAMITA_API_KEYS_FILE`` cannot be read."""


def parse_keys(text: str) -> list[str]:
    """The keys in a keys file (grammar in the module docstring)."""
    keys = []
    for line in text.splitlines():
        key = line.split(" #", 1)[0].split("\t#", 1)[0].strip()
        if key and not key.startswith("#"):
            keys.append(key)
    return keys


def key_id(key: str) -> str:
    """A short, non-reversible name for a key (safe to keep in memory maps and logs)."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class KeyRing:
    """The configured keys; empty ``keys`` with no file means authentication is off."""

    RECHECK_SECONDS = 1.0

    def __init__(self, keys: Iterable[str] = (), path: Path | None = None) -> None:
        self._static = [k for k in keys if k]
        self.path = path
        self._file_keys: list[str] = []
        self._mtime: int | None = None
        self._checked = 0.0
        self._reload_requested = False
        if path is not None:
            try:
                self._load()
            except OSError as e:
                raise KeysFileError(f"cannot read LLAMITA_API_KEYS_FILE {path}: {e.strerror or e}") from e

    @classmethod
    def from_env(cls) -> KeyRing:
        return cls(config.api_keys(), config.api_keys_file())

    @property
    def enabled(self) -> bool:
        """True when requests must carry a key (a configured but empty file locks everyone out)."""
        return bool(self._static) or self.path is not None

    @property
    def count(self) -> int:
        return len(self._static) + len(self._file_keys)

    def reload(self) -> bool:
        """Re-read the keys file (SIGHUP); on failure keep the previous keys. True if re-read."""
        if self.path is None:
            return False
        try:
            self._load()
        except OSError as e:
            log.error("keeping the previous API keys: cannot read %s: %s", self.path, e.strerror or e)
            return False
        log.info("re-read %s: %d API keys", self.path, self.count)
        return True

    def _load(self) -> None:
        assert self.path is not None
        mtime = self.path.stat().st_mtime_ns
        keys = parse_keys(self.path.read_text(encoding="utf-8"))
        self._file_keys, self._mtime = keys, mtime
        if not self.count:
            log.warning("%s holds no keys: every authenticated request will be refused", self.path)

    def request_reload(self) -> None:
        """Re-read the file before the next check: safe to call from a signal handler, which
        must not do file I/O or logging itself (it runs between two bytecodes of the loop)."""
        self._reload_requested = True

    def _maybe_reload(self) -> None:
        if self._reload_requested:
            self._reload_requested = False
            self.reload()
            return
        now = time.monotonic()
        if self.path is None or now - self._checked < self.RECHECK_SECONDS:
            return
        self._checked = now
        try:
            changed = os.stat(self.path).st_mtime_ns != self._mtime
        except OSError:
            return
        if changed:
            self.reload()

    def check(self, authorization: str, api_key: str = "") -> str | None:
        """The caller's key id when ``authorization`` is ``Bearer <a configured key>`` or, without
        a bearer token, ``api_key`` (the ``x-api-key`` header) is a configured key; else None."""
        self._maybe_reload()
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        token = token or api_key.strip()
        if not token:
            return None
        supplied = token.encode("latin-1")  # the header's own bytes (a UTF-8 key matches too)
        match = None
        for key in (*self._static, *self._file_keys):  # no early exit: time does not tell which
            if hmac.compare_digest(supplied, key.encode()):
                match = key
        return key_id(match) if match is not None else None


def is_public(method: str, path: str, metrics_public: bool) -> bool:
    return (method, path) in PUBLIC or (metrics_public and path == METRICS_PATH)


def exposure_warning(listen_host: str, keys: KeyRing) -> str | None:
    """The start-up warning for a server reachable from the network with no key."""
    if keys.enabled:
        return None
    host = listen_host.strip("[]")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return None
    return (
        f"!!! llamita is listening on {listen_host} with NO API KEY: anyone who can reach this port "
        "can run models and create or delete them. Set LLAMITA_API_KEYS or LLAMITA_API_KEYS_FILE "
        "(see docs/remote.md), or bind to 127.0.0.1. !!!"
    )


def _refusal(path: str) -> Response:
    """The 401, in the error shape of the API the path belongs to."""
    refusal = errors.unauthorized()
    if path == ANTHROPIC_PATHS or path.startswith(ANTHROPIC_PATHS + "/"):
        body = anthropic_error(str(refusal), refusal.status)
        return JSONResponse(body, status_code=refusal.status, headers=refusal.headers)
    return errors.as_response(refusal)


class AuthGuard:
    """ASGI middleware: 401 for a missing or wrong key; records the caller's identity."""

    def __init__(self, app: ASGIApp, keys: KeyRing, metrics_public: bool = False) -> None:
        self.app = app
        self.keys = keys
        self.metrics_public = metrics_public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(scope["method"], scope["path"], self.metrics_public):
            await self.app(scope, receive, send)
            return
        if not self.keys.enabled:
            client = scope.get("client")
            scope[IDENTITY] = f"addr:{client[0]}" if client else "addr:?"
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, str] = {}
        for name, value in scope["headers"]:  # the first of a repeated header counts
            headers.setdefault(name.lower(), value.decode("latin-1"))
        identity = self.keys.check(headers.get(b"authorization", ""), headers.get(b"x-api-key", ""))
        if identity is None:
            await _refusal(scope["path"])(scope, receive, send)
            return
        scope[IDENTITY] = f"key:{identity}"
        await self.app(scope, receive, send)
