"""OLLAMA_HOST parsed the way Ollama does, for the language server's default server URL."""

from __future__ import annotations

import pytest

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
