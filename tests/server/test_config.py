"""Each environment variable's accessor: defaults, parsing, and the ``describe()`` table."""

from __future__ import annotations

import pytest

from llamita.server import config


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
