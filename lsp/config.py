"""The editor side's environment: one accessor per variable, and ``OLLAMA_HOST`` parsed as Ollama does.

The language server, ``llamita pr`` and ``llamita review`` read the environment only through this
module (``VARIABLES`` lists every name; :func:`describe` is generated from it), so a new variable is one
entry here plus its accessor. The editor side talks to any Ollama-compatible server, so it must read
``OLLAMA_HOST`` exactly as the ``ollama`` CLI would (and never import llamita's server package for it).

``OLLAMA_HOST`` grammar (Ollama's ``envconfig.Host``): ``[scheme://]host[:port][/path]``; the scheme
defaults to ``http``, the port to 11434 without a scheme and to 80/443 with ``http://``/``https://``; an
unparsable or out-of-range port falls back to the default; surrounding quotes and spaces are ignored;
``0.0.0.0``/``::`` (listen addresses) mean loopback.

    >>> base_url("")
    'http://127.0.0.1:11434'
    >>> base_url(":8080")
    'http://127.0.0.1:8080'
    >>> base_url("https://box.lan/ollama/")
    'https://box.lan:443/ollama'
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

DEFAULT_PORT = 11434

VARIABLES: dict[str, str] = {
    "OLLAMA_HOST": "model server address, parsed as Ollama does (default 127.0.0.1:11434)",
    "LLAMITA_API_KEY": "API key sent as Authorization: Bearer",
    "LLAMITA_TLS_CA": "PEM CA bundle to verify an https model server with (a self-signed box)",
    "XDG_CONFIG_HOME": "folder of llamita/config.toml for llamita pr/review (default ~/.config)",
    "LLAMITA_CONFIG": "one more TOML config file for llamita pr/review, read last",
    "LLAMITA_REVIEW_STRICT": "1 or true: llamita review exits 2 when the model server is unreachable",
}


def var(name: str) -> str:
    """The raw value of one of ``VARIABLES`` ("" when unset)."""
    if name not in VARIABLES:
        raise KeyError(f"{name} is not an editor-side variable")
    return os.environ.get(name, "")


def describe() -> list[tuple[str, str]]:
    """(variable, meaning) pairs for ``--help``."""
    return list(VARIABLES.items())


def ollama_host() -> str:
    """``OLLAMA_HOST`` as written (``server_url`` is the parsed URL)."""
    return var("OLLAMA_HOST")


def server_url() -> str:
    """The model server's URL from ``OLLAMA_HOST``."""
    return base_url(ollama_host())


def api_key() -> str:
    """``LLAMITA_API_KEY``: sent as ``Authorization: Bearer`` when set."""
    return var("LLAMITA_API_KEY")


def tls_ca() -> Path | None:
    """``LLAMITA_TLS_CA``: a PEM CA bundle to verify the model server with (the CLI's rule)."""
    value = var("LLAMITA_TLS_CA")
    return Path(value).expanduser() if value else None


def config_home() -> Path:
    """``$XDG_CONFIG_HOME``, else ``~/.config``."""
    return Path(var("XDG_CONFIG_HOME") or Path.home() / ".config")


def extra_config() -> Path | None:
    """``LLAMITA_CONFIG``: a TOML file read after the others."""
    value = var("LLAMITA_CONFIG")
    return Path(value).expanduser() if value else None


def review_strict() -> bool:
    """``LLAMITA_REVIEW_STRICT`` is ``1`` or ``true``."""
    return var("LLAMITA_REVIEW_STRICT") in ("1", "true")


# ---- OLLAMA_HOST parsing ---------------------------------------------------------------------------


def _split_host_port(hostport: str) -> tuple[str, str] | None:
    """Go's ``net.SplitHostPort``: the port is required and IPv6 hosts are bracketed."""
    if hostport.startswith("["):
        m = re.fullmatch(r"\[([^\]]*)\]:([^:]*)", hostport)
        return (m.group(1), m.group(2)) if m else None
    if hostport.count(":") != 1:
        return None
    host, port = hostport.split(":")
    return host, port


def _client_host(host: str) -> str:
    try:
        ip = ipaddress.ip_address(host or "127.0.0.1")
    except ValueError:
        return host
    if ip.is_unspecified:
        ip = ipaddress.ip_address("127.0.0.1" if ip.version == 4 else "::1")
    return f"[{ip}]" if ip.version == 6 else str(ip)


def base_url(value: str | None = None) -> str:
    """The URL (no trailing slash) for ``value``, or for ``OLLAMA_HOST`` when ``value`` is None."""
    s = (ollama_host() if value is None else value).strip().strip("\"'")
    default_port = str(DEFAULT_PORT)
    if "://" in s:
        scheme, hostport = s.split("://", 1)
        default_port = {"http": "80", "https": "443"}.get(scheme, default_port)
    else:
        scheme, hostport = "http", s
    hostport, _, path = hostport.partition("/")
    split = _split_host_port(hostport)
    if split is None:
        host, port = hostport.strip("[]") or "127.0.0.1", default_port
    else:
        host, port = split
    try:
        port_n = int(port)
        if not 0 <= port_n <= 65535:
            raise ValueError(port)
    except ValueError:
        port_n = int(default_port)
    path = path.strip("/")
    return f"{scheme}://{_client_host(host)}:{port_n}" + (f"/{path}" if path else "")
