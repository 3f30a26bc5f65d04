"""Ollama's ``OLLAMA_HOST`` grammar and Go's SplitHostPort."""

from __future__ import annotations

import pytest

from llamita.server.gocompat.net import parse_host, split_host_port

HOSTS = [
    ("empty", "", "http", "127.0.0.1", 11434),
    ("ip-only", "0.0.0.0", "http", "0.0.0.0", 11434),
    ("ip-port", "1.2.3.4:5678", "http", "1.2.3.4", 5678),
    ("port-only", ":8080", "http", "", 8080),
    ("http-scheme", "http://example.com", "http", "example.com", 80),
    ("https-scheme", "https://example.com", "https", "example.com", 443),
    ("https-port", "https://example.com:8443", "https", "example.com", 8443),
    ("ipv6", "[::1]:11434", "http", "::1", 11434),
    ("ipv6-bare", "::1", "http", "::1", 11434),
    ("bad-port", "localhost:99999", "http", "localhost", 11434),
    ("ollama-com", "ollama.com", "https", "ollama.com", 443),
    ("hostname", "box.internal", "http", "box.internal", 11434),
]


@pytest.mark.parametrize(
    ("value", "scheme", "host", "port"), [h[1:] for h in HOSTS], ids=[h[0] for h in HOSTS]
)
def test_parse_host(value: str, scheme: str, host: str, port: int) -> None:
    parsed = parse_host(value)
    assert (parsed.scheme, parsed.host, parsed.port) == (scheme, host, port)


def test_connectable_rewrites_unspecified() -> None:
    assert parse_host("0.0.0.0:1234").connectable.url == "http://127.0.0.1:1234"
    assert parse_host("[::]:1234").connectable.url == "http://[::1]:1234"


@pytest.mark.parametrize(
    ("hostport", "split"),
    [
        ("a:1", ("a", "1")),
        ("[::1]:2", ("::1", "2")),
        (":3", ("", "3")),
        ("a", None),
        ("::1", None),
        ("[::1]", None),
    ],
)
def test_split_host_port(hostport: str, split: tuple[str, str] | None) -> None:
    assert split_host_port(hostport) == split
