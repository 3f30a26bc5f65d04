"""The model server's base URL from ``OLLAMA_HOST``, parsed the way Ollama's ``envconfig.Host`` does.

The language server talks to any Ollama-compatible server, so it must read ``OLLAMA_HOST`` exactly as
the ``ollama`` CLI would (and never import llamita's server package for it). Grammar:
``[scheme://]host[:port][/path]``; the scheme defaults to ``http``, the port to 11434 without a scheme
and to 80/443 with ``http://``/``https://``; an unparsable or out-of-range port falls back to the default;
surrounding quotes and spaces are ignored; ``0.0.0.0``/``::`` (listen addresses) mean loopback.

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

DEFAULT_PORT = 11434


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
    s = (os.environ.get("OLLAMA_HOST", "") if value is None else value).strip().strip("\"'")
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
