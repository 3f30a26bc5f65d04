"""Settings from initializationOptions and didChangeConfiguration."""

from __future__ import annotations

import pytest

from llamita.lsp.settings import DEFAULT_MODEL, Settings


def test_defaults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "box:1234")
    monkeypatch.setenv("LLAMITA_API_KEY", "k")
    settings = Settings()
    assert settings.server_url == "http://box:1234"
    assert settings.api_key == "k"
    assert settings.completion_model == settings.review_model == DEFAULT_MODEL


def test_merge_flat_and_sectioned() -> None:
    base = Settings()
    flat = base.merged({"completionModel": "qwen2.5-coder:1.5b", "debounceMs": 50, "reviewOnSave": False})
    assert (flat.completion_model, flat.debounce_ms, flat.review_on_save) == ("qwen2.5-coder:1.5b", 50, False)
    nested = base.merged(
        {"llamita": {"serverUrl": "https://gpu:443/ollama", "languages": {"markdown": False}}}
    )
    assert nested.server_url == "https://gpu:443/ollama"
    assert not nested.completion_enabled("markdown") and nested.completion_enabled("python")


def test_request_timeout_must_be_positive() -> None:
    assert Settings().request_timeout_seconds == 60.0
    assert Settings().merged({"requestTimeoutSeconds": 600}).request_timeout_seconds == 600.0
    assert Settings().merged({"requestTimeoutSeconds": 0}).request_timeout_seconds == 60.0
    assert Settings().merged({"requestTimeoutSeconds": -5.0}).request_timeout_seconds == 60.0


def test_wrong_types_and_unknown_keys_keep_the_previous_value() -> None:
    base = Settings().merged({"numPredict": 64})
    merged = base.merged(
        {
            "numPredict": "many",
            "temperature": True,
            "enable": "yes",
            "stop": "\n",
            "debounceMs": -5,
            "completionItems": "sometimes",
            "noSuchKey": 1,
        }
    )
    assert merged == base
    assert Settings().merged(None) == Settings()
    assert Settings().merged({"temperature": 1}).temperature == 1.0


def test_empty_server_url_means_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "box:1")
    assert Settings().merged({"serverUrl": "other:2"}).merged({"serverUrl": ""}).server_url == "http://box:1"


def test_disable_everything_or_all_but_some_languages() -> None:
    assert not Settings().merged({"enable": False}).completion_enabled("python")
    only = Settings().merged({"languages": {"*": False, "python": True}})
    assert only.completion_enabled("python") and not only.completion_enabled("go")
