"""The editor side's environment: one accessor per variable, and OLLAMA_HOST parsed the way Ollama does."""

from __future__ import annotations

from pathlib import Path

import pytest

from llamita.lsp import config
from llamita.lsp.config import base_url


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "http://127.0.0.1:11434"),
        ("   ", "http://127.0.0.1:11434"),
        ('"127.0.0.1:8080"', "http://127.0.0.1:8080"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:1234", "http://127.0.0.1:1234"),
        (":56789", "http://127.0.0.1:56789"),
        ("box.lan", "http://box.lan:11434"),
        ("box.lan:99999", "http://box.lan:11434"),
        ("http://box.lan", "http://box.lan:80"),
        ("https://box.lan", "https://box.lan:443"),
        ("https://box.lan/ollama/", "https://box.lan:443/ollama"),
        ("[::1]", "http://[::1]:11434"),
        ("[::1]:7000", "http://[::1]:7000"),
        ("[::]:7000", "http://[::1]:7000"),
        ("http://localhost:11434", "http://localhost:11434"),
    ],
)
def test_base_url(value: str, expected: str) -> None:
    assert base_url(value) == expected


def test_environment_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "gpu-box:11500")
    assert base_url() == "http://gpu-box:11500"
    monkeypatch.delenv("OLLAMA_HOST")
    assert base_url() == "http://127.0.0.1:11434"


def test_every_variable_has_one_accessor_and_a_description(monkeypatch: pytest.MonkeyPatch) -> None:
    assert [name for name, _ in config.describe()] == list(config.VARIABLES)
    with pytest.raises(KeyError):
        config.var("LLAMITA_NOT_A_SETTING")
    for name in config.VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert (config.api_key(), config.tls_ca(), config.extra_config(), config.review_strict()) == (
        "",
        None,
        None,
        False,
    )
    assert config.config_home() == Path.home() / ".config"
    monkeypatch.setenv("LLAMITA_API_KEY", "k")
    monkeypatch.setenv("LLAMITA_TLS_CA", "~/ca.pem")
    monkeypatch.setenv("LLAMITA_CONFIG", "/etc/llamita.toml")
    monkeypatch.setenv("XDG_CONFIG_HOME", "/xdg")
    assert config.api_key() == "k" and config.tls_ca() == Path("~/ca.pem").expanduser()
    assert config.extra_config() == Path("/etc/llamita.toml") and config.config_home() == Path("/xdg")


@pytest.mark.parametrize(("value", "strict"), [("1", True), ("true", True), ("0", False), ("yes", False)])
def test_review_strict(monkeypatch: pytest.MonkeyPatch, value: str, strict: bool) -> None:
    monkeypatch.setenv("LLAMITA_REVIEW_STRICT", value)
    assert config.review_strict() is strict
