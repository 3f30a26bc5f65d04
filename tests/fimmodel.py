"""The FIM-capable model the client tests need, made through the public API like a user would.

SmolLM2 has no ``.Suffix`` template, so ``suffix`` requests go to a generated tiny GGUF with FIM tokens.
Test modules import the fixture by name (a ``tests/clients/conftest.py`` would shadow ``conftest``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ollama
import pytest

from ggufgen import write_tiny_gguf

FIM_MODEL = "tiny-coder:latest"


@pytest.fixture
def tiny_coder(server: Any, tmp_path: Path) -> str:
    """Create ``tiny-coder:latest`` on the ``server`` fixture from a blob; returns its full name."""
    client = ollama.Client(host=server.url)
    try:
        digest = client.create_blob(write_tiny_gguf(tmp_path / "coder.gguf", fim=True))
        client.create(model=FIM_MODEL, files={"coder.gguf": digest})
        assert "insert" in (client.show(FIM_MODEL).capabilities or [])
    finally:
        client.close()
    return FIM_MODEL
