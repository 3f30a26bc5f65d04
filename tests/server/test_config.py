from __future__ import annotations

import pytest

from llamita.server import config

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
    parsed = config.parse_host(value)
    assert (parsed.scheme, parsed.host, parsed.port) == (scheme, host, port)


def test_connectable_rewrites_unspecified() -> None:
    assert config.parse_host("0.0.0.0:1234").connectable.url == "http://127.0.0.1:1234"
    assert config.parse_host("[::]:1234").connectable.url == "http://[::1]:1234"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5m", 300), ("1h30m", 5400), ("300ms", 0.3), ("-1s", -1), ("0", 0), ("1.5h", 5400), ("2h45m30s", 9930)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert config.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"), [("300", "missing unit"), ("5x", "invalid duration"), ("", "invalid")]
)
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config.parse_duration(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", 300), ("10m", 600), ("60", 60), ("-1", float("inf")), ("junk", 300), ("'2m'", 120)],
)
def test_keep_alive(monkeypatch: pytest.MonkeyPatch, value: str, expected: float) -> None:
    monkeypatch.setenv("OLLAMA_KEEP_ALIVE", value)
    assert config.keep_alive() == expected


@pytest.mark.parametrize(("value", "expected"), [("", False), ("1", True), ("false", False), ("junk", True)])
def test_bool_rule(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("OLLAMA_NOPRUNE", value)
    assert config.no_prune() is expected


def test_origins_user_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_ORIGINS", "chrome-extension://*,https://a.example")
    origins = config.allowed_origins()
    assert origins[:2] == ["chrome-extension://*", "https://a.example"]
    assert "vscode-webview://*" in origins


def test_models_dir(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path))
    assert config.models_dir() == tmp_path
    monkeypatch.delenv("OLLAMA_MODELS")
    assert config.models_dir().parts[-2:] == (".ollama", "models")
