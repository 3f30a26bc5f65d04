"""Go's ``net.SplitHostPort`` and Ollama's ``OLLAMA_HOST`` grammar (``envconfig.Host``).

The server listens where ``OLLAMA_HOST`` says and the CLI connects there, so both must read
``[scheme://]host[:port][/path]`` exactly as Ollama does, defaults and fallbacks included.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

DEFAULT_PORT = 11434


@dataclass(frozen=True)
class HostURL:
    """Where the server listens and where clients connect (``OLLAMA_HOST``)."""

    scheme: str
    host: str
    port: int
    path: str = ""

    @property
    def netloc(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        base = f"{self.scheme}://{self.netloc}"
        return f"{base}/{self.path}" if self.path else base

    @property
    def connectable(self) -> HostURL:
        """0.0.0.0 / :: are listen-only addresses; clients use loopback instead."""
        try:
            ip = ipaddress.ip_address(self.host)
        except ValueError:
            return self
        if ip.is_unspecified:
            return HostURL(self.scheme, "127.0.0.1" if ip.version == 4 else "::1", self.port, self.path)
        return self


def split_host_port(hostport: str) -> tuple[str, str] | None:
    """Go's ``net.SplitHostPort``: requires a port; IPv6 hosts must be bracketed; None on error."""
    if hostport.startswith("["):
        m = re.fullmatch(r"\[([^\]]*)\]:([^:]*)", hostport)
        return (m.group(1), m.group(2)) if m else None
    if hostport.count(":") != 1:
        return None
    host, port = hostport.split(":")
    return host, port


def parse_host(value: str) -> HostURL:
    """Ollama's ``envconfig.Host`` parsing of ``[scheme://]host[:port][/path]``."""
    s = value.strip()
    default_port = str(DEFAULT_PORT)
    if "://" in s:
        scheme, hostport = s.split("://", 1)
        if scheme == "http":
            default_port = "80"
        elif scheme == "https":
            default_port = "443"
    else:
        scheme, hostport = "http", s
        if s == "ollama.com":
            scheme, hostport = "https", "ollama.com:443"
    hostport, _, path = hostport.partition("/")
    split = split_host_port(hostport)
    if split is None:
        host, port = "127.0.0.1", default_port
        bare = hostport.strip("[]")
        try:
            host = str(ipaddress.ip_address(bare))
        except ValueError:
            if hostport:
                host = hostport
    else:
        host, port = split
    try:
        port_n = int(port)
        if not 0 <= port_n <= 65535:
            raise ValueError
    except ValueError:
        port_n = int(default_port)
    return HostURL(scheme, host, port_n, path)
