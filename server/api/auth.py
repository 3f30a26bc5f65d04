"""Optional API keys: ``Authorization: Bearer <key>`` (or ``x-api-key: <key>``) on every route
but the health checks.

Ollama has no incoming authentication (users put a proxy in front, and many do not); llamita
checks a bearer key when ``LLAMITA_API_KEYS`` or ``LLAMITA_API_KEYS_FILE`` is set, and is
open otherwise, so a default install behaves exactly like Ollama.  The bearer scheme is what
Continue's ``apiKey``, Llama Coder's ``bearerToken`` and ollama-python's ``OLLAMA_API_KEY`` send;
``x-api-key`` is what the Anthropic SDKs and Claude Code's ``ANTHROPIC_API_KEY`` send.  A refusal
on Anthropic's routes (``/v1/messages...``) has Anthropic's error shape, so the SDKs raise their
``AuthenticationError``.

Keys file grammar (UTF-8), one key per line, fields separated by whitespace::

    # a comment line; blank lines are ignored
    alice   9f2c...e1        user     # NAME KEY ROLE; a trailing comment after whitespace
    ci      sha256:5e88...d8  admin   # KEY as sha256:<64 hex>: the file holds no secret
    an-old-bare-key                   # a key alone: full rights (admin), named key-<8 hex>

ROLE is ``user`` or ``admin`` (:mod:`.roles` says what each may call).  A bad line (unknown
role, two fields, bad hex, a duplicate name or key) stops the server at start-up with its
line number, and on a reload keeps the previous keys.  ``LLAMITA_API_KEYS=k1,k2`` keys are
bare keys (admin).

The file is re-read after SIGHUP (``llamita serve`` installs the handler) and when its mtime
changes (checked at most once a second), so rotating a key needs no restart.  A supplied key
is hashed and its sha256 compared with ``hmac.compare_digest`` against every configured key.
Keys are never logged; names are.  Each authenticated request carries its key's name
(:data:`OWNER`, what usage and fair sharing count by) and role (:data:`ROLE`); the limits
layer knows a caller by a short hash of its key (:data:`IDENTITY`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from llamita.server import config

from . import errors, roles
from .anthropic.response import anthropic_error
from .openai.response import openai_error

log = logging.getLogger("llamita.auth")

# Routes a load balancer or an uptime probe hits without credentials (method, path).
PUBLIC = frozenset({("GET", "/"), ("HEAD", "/"), ("GET", "/api/version"), ("HEAD", "/api/version")})
METRICS_PATH = "/metrics"
ANTHROPIC_PATHS = "/v1/messages"  # the prefix of the routes that answer in Anthropic's error shape
OPENAI_PATHS = "/v1"  # the prefix of the routes that answer in OpenAI's error shape (403s)
IDENTITY = "llamita.identity"  # scope key: who the limits layer counts this request against
OWNER = "llamita.owner"  # scope key: the name of the API key the request came with (absent when open)
ROLE = "llamita.role"  # scope key: that key's role, ``user`` or ``admin`` (absent when open)

HASHED = "sha256:"
_HEX = re.compile(r"[0-9a-fA-F]{64}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")


class KeysFileError(OSError):
    """Raised at start-up when ``LLAMITA_API_KEYS_FILE`` cannot be read or has a bad line."""


@dataclass(frozen=True)
class Key:
    """A configured key: its name and role, and the sha256 of its secret (never the secret)."""

    name: str
    role: str
    digest: bytes

    @property
    def id(self) -> str:
        """:func:`key_id` of the secret: what the limits layer counts by."""
        return self.digest.hex()[:12]


def key_id(key: str) -> str:
    """A short, non-reversible name for a key (safe to keep in memory maps and logs)."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def bare_key(key: str) -> Key:
    """A key given alone (``LLAMITA_API_KEYS``, a one-field line): full rights, a derived name."""
    digest = hashlib.sha256(key.encode()).digest()
    return Key(f"key-{digest.hex()[:8]}", roles.ADMIN, digest)


def _strip_comment(line: str) -> str:
    text = line.split(" #", 1)[0].split("\t#", 1)[0].strip()
    return "" if text.startswith("#") else text


def parse_keys(text: str) -> list[str]:
    """The key field of each line of a keys file (a bare key, or the KEY of ``NAME KEY ROLE``)."""
    keys = []
    for line in text.splitlines():
        fields = _strip_comment(line).split()
        if fields:
            keys.append(fields[0] if len(fields) == 1 else fields[1])
    return keys


def _parse_line(fields: list[str]) -> Key:
    """One line's key; ValueError says what is wrong without repeating a field (it may be a key)."""
    if len(fields) == 1:
        secret = fields[0]
        name, role = "", roles.ADMIN
    elif len(fields) == 3:
        name, secret, role = fields
        if role not in roles.ROLES:
            raise ValueError(f"unknown role (expected {' or '.join(roles.ROLES)})")
        if not _NAME.fullmatch(name):
            raise ValueError("bad name (letters, digits and . _ @ + -, at most 64)")
    else:
        raise ValueError(f"{len(fields)} fields (expected NAME KEY ROLE, or a key alone)")
    if secret.startswith(HASHED):
        hexdigest = secret[len(HASHED) :]
        if not _HEX.fullmatch(hexdigest):
            raise ValueError("bad sha256: key (expected sha256: and 64 hex digits)")
        digest = bytes.fromhex(hexdigest)
    else:
        digest = hashlib.sha256(secret.encode()).digest()
    return Key(name or f"key-{digest.hex()[:8]}", role, digest)


def parse_key_lines(text: str, source: str = "keys file") -> list[Key]:
    """The keys of a keys file (grammar in the module docstring); KeysFileError names the line."""
    keys: list[Key] = []
    names: dict[str, int] = {}
    digests: dict[bytes, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = _strip_comment(line).split()
        if not fields:
            continue
        try:
            key = _parse_line(fields)
            if key.name in names:
                raise ValueError(f"duplicate name (also on line {names[key.name]})")
            if key.digest in digests:
                raise ValueError(f"duplicate key (also on line {digests[key.digest]})")
        except ValueError as e:
            raise KeysFileError(f"{source} line {number}: {e}") from None
        names[key.name], digests[key.digest] = number, number
        keys.append(key)
    return keys


class KeyRing:
    """The configured keys; empty ``keys`` with no file means authentication is off."""

    RECHECK_SECONDS = 1.0

    def __init__(self, keys: Iterable[str] = (), path: Path | None = None) -> None:
        self._static = [bare_key(k) for k in keys if k]
        self.path = path
        self._file_keys: list[Key] = []
        self._mtime: int | None = None
        self._checked = 0.0
        self._reload_requested = False
        if path is not None:
            try:
                self._load()
            except KeysFileError:
                raise
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

    @property
    def names(self) -> list[str]:
        """The configured keys' names (for start-up and reload logs)."""
        return [key.name for key in (*self._static, *self._file_keys)]

    def reload(self) -> bool:
        """Re-read the keys file (SIGHUP); on failure keep the previous keys. True if re-read."""
        if self.path is None:
            return False
        try:
            self._load()
        except KeysFileError as e:
            log.error("keeping the previous API keys: %s", e)
            return False
        except OSError as e:
            log.error("keeping the previous API keys: cannot read %s: %s", self.path, e.strerror or e)
            return False
        log.info("re-read %s: %d API keys (%s)", self.path, self.count, ", ".join(self.names))
        return True

    def _load(self) -> None:
        assert self.path is not None
        mtime = self.path.stat().st_mtime_ns
        text = self.path.read_text(encoding="utf-8")
        try:
            keys = parse_key_lines(text, f"LLAMITA_API_KEYS_FILE {self.path}")
        finally:
            self._mtime = mtime  # a bad file is reported once, not on every request until fixed
        self._file_keys = keys
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

    def identify(self, authorization: str, api_key: str = "") -> Key | None:
        """The caller's key when ``authorization`` is ``Bearer <a configured key>`` or, without
        a bearer token, ``api_key`` (the ``x-api-key`` header) is a configured key; else None."""
        self._maybe_reload()
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        token = token or api_key.strip()
        if not token:
            return None
        supplied = hashlib.sha256(token.encode("latin-1")).digest()  # the header's own bytes
        match = None
        for key in (*self._static, *self._file_keys):  # no early exit: time does not tell which
            if hmac.compare_digest(supplied, key.digest):
                match = key
        return match

    def check(self, authorization: str, api_key: str = "") -> str | None:
        """:meth:`identify`'s key id (:func:`key_id`), or None."""
        key = self.identify(authorization, api_key)
        return key.id if key is not None else None


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


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _refusal(path: str, refusal: errors.APIError | None = None) -> Response:
    """A 401 (or ``refusal``), in the error shape of the API the path belongs to.

    The 401 keeps Ollama's shape on the OpenAI routes, as it always had; a 403 there has OpenAI's.
    """
    refusal = refusal or errors.unauthorized()
    if _under(path, ANTHROPIC_PATHS):
        body = anthropic_error(str(refusal), refusal.status)
    elif _under(path, OPENAI_PATHS) and refusal.status != 401:
        body = openai_error(str(refusal), refusal.status)
    else:
        return errors.as_response(refusal)
    return JSONResponse(body, status_code=refusal.status, headers=refusal.headers)


def forbidden(key: Key, method: str, path: str) -> errors.APIError:
    needed = roles.required_role(path)
    return errors.APIError(
        f'key "{key.name}" (role {key.role}) may not use {method} {path}: {needed} only', 403
    )


class AuthGuard:
    """ASGI middleware: 401 for a missing or wrong key, 403 for a key whose role does not
    allow the route; records the caller's identity, key name and role in the scope."""

    def __init__(self, app: ASGIApp, keys: KeyRing, metrics_public: bool = False) -> None:
        self.app = app
        self.keys = keys
        self.metrics_public = metrics_public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        if not self.keys.enabled:
            client = scope.get("client")
            scope[IDENTITY] = f"addr:{client[0]}" if client else "addr:?"
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, str] = {}
        for name, value in scope["headers"]:  # the first of a repeated header counts
            headers.setdefault(name.lower(), value.decode("latin-1"))
        key = self.keys.identify(headers.get(b"authorization", ""), headers.get(b"x-api-key", ""))
        if key is not None:
            scope[IDENTITY], scope[OWNER], scope[ROLE] = f"key:{key.id}", key.name, key.role
        if is_public(method, path, self.metrics_public):  # a key, if sent, still names the caller
            await self.app(scope, receive, send)
            return
        if key is None:
            client = scope.get("client")
            log.info("401 %s %s from %s: no valid API key", method, path, client[0] if client else "?")
            await _refusal(path)(scope, receive, send)
            return
        if not roles.allows(key.role, path):
            refusal = forbidden(key, method, path)
            log.warning("403 %s", refusal)
            await _refusal(path, refusal)(scope, receive, send)
            return
        log.debug('key "%s" (role %s): %s %s', key.name, key.role, method, path)
        await self.app(scope, receive, send)
