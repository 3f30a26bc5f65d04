"""Registry credentials and ``WWW-Authenticate`` challenges (Docker token auth, Basic auth).

A registry that wants credentials answers 401 with a challenge::

    WWW-Authenticate: Bearer realm="https://auth.example.com/token",service="registry",scope="repository:team/coder:pull"
    WWW-Authenticate: Basic realm="Registry Realm"

For ``Bearer`` the client fetches ``<realm>?service=<service>&scope=<scope>`` (one ``scope``
parameter per space-separated scope), sending Basic credentials when it has some, and
retries with ``Authorization: Bearer <token>`` (the token server answers ``{"token": ...}``
or ``{"access_token": ...}``).  For ``Basic`` it retries with the credentials themselves.

Credentials come from ``LLAMITA_REGISTRY_AUTH`` first, then Docker's ``config.json``
(``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``, the ``auths`` map written by
``docker login``)::

    LLAMITA_REGISTRY_AUTH="user:password"                          any registry
    LLAMITA_REGISTRY_AUTH="reg.example.com=user:pw,localhost:5000=ci:token"

They are only ever sent after the registry asked for them, and a token realm only gets them
when :func:`realm_refusal` finds nothing wrong with it: ``https`` (plain ``http`` only when both
the registry and the realm are on loopback: the test registries), and the realm's host is the
registry's own (port included, as Ollama compares them) or the registry's known auth host
(:data:`AUTH_HOSTS`: ``registry.ollama.ai`` → ``ollama.com``, Docker Hub → ``auth.docker.io``, …).
Any other realm is asked for a token anonymously.  Ollama refuses a realm on another host
outright; llamita asks it without credentials, so public pulls from registries with a separate
token service keep working and no secret leaves for a host the user did not name.  Ollama's own
ed25519 request signing for ollama.com is not implemented, so pushing to ollama.com is not possible.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from llamita.server import config

AUTH_VARIABLE = "LLAMITA_REGISTRY_AUTH"

_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')
_HOST_ENTRY = re.compile(r"^([A-Za-z0-9_.\-]+(?::\d+)?)=(.+:.*)$")

# A registry host → the other hosts whose token realm may receive its credentials (https, port 443).
AUTH_HOSTS: dict[str, frozenset[str]] = {
    "registry.ollama.ai": frozenset({"ollama.com", "www.ollama.com"}),
    "ollama.com": frozenset({"registry.ollama.ai"}),
    "registry-1.docker.io": frozenset({"auth.docker.io"}),
    "docker.io": frozenset({"auth.docker.io"}),
    "index.docker.io": frozenset({"auth.docker.io"}),
    "hf.co": frozenset({"huggingface.co"}),
    "huggingface.co": frozenset({"hf.co"}),
}


@dataclass(frozen=True)
class Challenge:
    """One parsed ``WWW-Authenticate`` header."""

    scheme: str  # "bearer" or "basic", lower case
    realm: str = ""
    service: str = ""
    scope: str = ""

    def token_url(self) -> str:
        """The realm URL with ``service`` and each ``scope`` added to its query."""
        parts = urlsplit(self.realm)
        query = parse_qsl(parts.query, keep_blank_values=True)
        if self.service:
            query.append(("service", self.service))
        query += [("scope", s) for s in self.scope.split(" ") if s]
        return urlunsplit(parts._replace(query=urlencode(query)))


def parse_challenge(header: str) -> Challenge | None:
    """``Bearer realm="…",service="…",scope="…"`` → :class:`Challenge`; None if unusable."""
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _PARAM.finditer(rest)
    }
    params = {k: re.sub(r"\\(.)", r"\1", v) for k, v in params.items()}
    kind = scheme.lower()
    if kind not in ("bearer", "basic"):
        return None
    return Challenge(kind, params.get("realm", ""), params.get("service", ""), params.get("scope", ""))


def is_loopback(hostname: str) -> bool:
    """``localhost``, ``127.x.y.z`` or ``::1``."""
    hostname = hostname.strip("[]").lower()
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _host_port(netloc: str, default_port: int) -> tuple[str, int]:
    """``Host:port`` → (lower-case host, port), the scheme's default port when none is written."""
    parts = urlsplit(f"//{netloc}")
    try:
        port = parts.port or default_port
    except ValueError:
        port = -1
    return (parts.hostname or "").lower(), port


def realm_refusal(realm: str, registry_host: str, registry_scheme: str = "https") -> str:
    """Why ``registry_host``'s credentials must not go to the token ``realm`` ("" when they may)."""
    parts = urlsplit(realm)
    scheme = parts.scheme.lower()
    host, port = _host_port(parts.netloc, 443 if scheme == "https" else 80)
    if scheme not in ("https", "http") or not host:
        return f"the token realm {realm!r} is not an http(s) URL"
    registry, registry_port = _host_port(registry_host, 80 if registry_scheme == "http" else 443)
    if scheme == "http" and not (is_loopback(host) and is_loopback(registry)):
        return f"the token realm {realm} is plain http"
    if (host, port) == (registry, registry_port):
        return ""
    if port == 443 and host in AUTH_HOSTS.get(registry, frozenset()):
        return ""
    return f"the token realm's host {parts.netloc} is neither {registry_host} nor its known auth host"


def _normalise_host(key: str) -> str:
    """``https://reg.example.com/v1/`` → ``reg.example.com`` (Docker's config keys vary)."""
    if "://" in key:
        key = urlsplit(key).netloc
    return key.split("/", 1)[0].lower()


def _from_variable(host: str) -> tuple[str, str] | None:
    value = config.registry_auth()
    if not value:
        return None
    fallback: tuple[str, str] | None = None
    for entry in (e.strip() for e in value.split(",")):
        if not entry:
            continue
        match = _HOST_ENTRY.match(entry)
        if match:
            if match.group(1).lower() == host.lower():
                user, _, password = match.group(2).partition(":")
                return user, password
        elif ":" in entry and fallback is None:
            user, _, password = entry.partition(":")
            fallback = (user, password)
    return fallback


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return (Path(base) if base else Path.home() / ".docker") / "config.json"


def _from_docker_config(host: str) -> tuple[str, str] | None:
    try:
        doc = json.loads(docker_config_path().read_text())
    except (OSError, ValueError):
        return None
    auths = doc.get("auths") if isinstance(doc, dict) else None
    if not isinstance(auths, dict):
        return None
    for key, entry in auths.items():
        if _normalise_host(str(key)) != host.lower() or not isinstance(entry, dict):
            continue
        if entry.get("username") and entry.get("password"):
            return str(entry["username"]), str(entry["password"])
        try:
            user, sep, password = base64.b64decode(entry.get("auth") or "").decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            continue
        if sep:
            return user, password
    return None


def credentials(host: str) -> tuple[str, str] | None:
    """(user, password) for a registry host (``host[:port]``), or None."""
    return _from_variable(host) or _from_docker_config(host)


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def token_from_response(body: bytes) -> str:
    """The bearer token in a token server's JSON reply; ValueError when there is none."""
    doc = json.loads(body)
    token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
    if not isinstance(token, str) or not token:
        raise ValueError("token server reply has no token")
    return token
