"""Pinned models on a real server (issue 16): ``LLAMITA_PIN`` and ``keep_alive: -1`` survive a load
storm of other models, loaded by real engines (tiny generated GGUFs, ``OLLAMA_MAX_LOADED_MODELS=2``),
and a load that only pinned models could make room for is a 503 that names them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving import serve_app

from ggufgen import write_tiny_gguf
from llamita.server.api import build_app
from llamita.server.model.create import import_gguf
from llamita.server.store.blobs import Store

pytestmark = pytest.mark.model

NAMES = ("pinned", "b", "c", "d")
HANG_GUARD_S = 120.0  # only stops a broken test: the start-up load is waited for by its result


@pytest.fixture
def url(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for seed, name in enumerate(NAMES):
        import_gguf(store, name, write_tiny_gguf(tmp_path / f"{name}.gguf", seed=seed))
    monkeypatch.setenv("OLLAMA_MAX_LOADED_MODELS", "2")
    monkeypatch.setenv("LLAMITA_PIN", "pinned")
    with serve_app(build_app(store, listen_host="127.0.0.1")) as base:
        yield base


def loaded(url: str) -> list[str]:
    r = httpx.get(url + "/api/ps", timeout=30)
    assert r.status_code == 200, r.text
    return sorted(m["name"] for m in r.json()["models"])


def generate(url: str, model: str, **fields: Any) -> httpx.Response:
    body = {"model": model, "prompt": "hello", "stream": False, "options": {"num_predict": 2}, **fields}
    return httpx.post(url + "/api/generate", json=body, timeout=HANG_GUARD_S)


def test_a_pinned_model_survives_a_load_storm_and_a_full_house_of_pins_is_a_503(url: str) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while loaded(url) != ["pinned:latest"]:  # LLAMITA_PIN loads at start-up, with no request
        assert time.monotonic() < deadline, loaded(url)
        time.sleep(0.02)
    for name in ("b", "c", "d", "b", "c", "d"):
        r = generate(url, name)
        assert r.status_code == 200 and r.json()["done"] is True, r.text
        assert loaded(url) == sorted(["pinned:latest", f"{name}:latest"])
    # A request's keep_alive cannot unpin it, and an explicit unload leaves it loaded.
    assert generate(url, "pinned", keep_alive=0).status_code == 200
    assert generate(url, "pinned", prompt="", keep_alive=0).status_code == 200
    assert "pinned:latest" in loaded(url)
    # keep_alive -1 pins "d" too: with both places pinned, "b" cannot be loaded.
    assert generate(url, "d", keep_alive=-1).status_code == 200
    refused = generate(url, "b")
    assert refused.status_code == 503
    assert refused.json() == {
        "error": 'cannot load "b:latest": memory is held by pinned models d:latest, pinned:latest'
    }
    assert loaded(url) == ["d:latest", "pinned:latest"]
    # A finite keep_alive unpins "d": "b" now takes its place, "pinned" stays.
    assert generate(url, "d", keep_alive="5m").status_code == 200
    assert generate(url, "b").status_code == 200
    assert loaded(url) == ["b:latest", "pinned:latest"]
