"""Fixtures for the real-client tests: ``tiny_coder``, a FIM-capable GGUF (``tests/fimmodel.py``),
and ``llamita_serve``: the ``llamita serve`` command itself, which the coding agents run against."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fimmodel import tiny_coder
from serving import free_port, serve_cli

from llamita.server.store.blobs import Store

__all__ = ["Served", "llamita_serve", "tiny_coder"]


@dataclass(frozen=True)
class Served:
    url: str
    log: Path


@pytest.fixture
def llamita_serve(seeded_store: Store, tmp_path: Path) -> Iterator[Served]:
    """``llamita serve`` as a subprocess over a store seeded with smollm2:135m (what a user runs)."""
    port, log = free_port(), tmp_path / "serve.log"
    with serve_cli({"OLLAMA_MODELS": str(seeded_store.root)}, port, log):
        yield Served(f"http://127.0.0.1:{port}", log)
