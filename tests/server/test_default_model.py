from __future__ import annotations

from pathlib import Path

from llamita.server.default_model import (
    DEFAULT_MODEL,
    DEFAULT_SYSTEM,
    ensure_default_model,
    find_default_gguf,
)
from llamita.server.names import require_name
from llamita.server.store import Store


def test_the_packaged_gguf_is_found() -> None:
    path = find_default_gguf()
    assert path is not None and path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_an_empty_store_gets_the_default_model_with_its_system_prompt(store: Store) -> None:
    assert ensure_default_model(store) is True
    manifest = store.get(require_name(DEFAULT_MODEL))
    assert manifest is not None
    kinds = [layer.media_type.rsplit(".", 1)[-1] for layer in manifest.layers]
    assert sorted(kinds) == ["model", "params", "system", "template"]
    system = next(layer for layer in manifest.layers if layer.media_type.endswith(".system"))
    assert store.read_blob(system.digest).decode() == DEFAULT_SYSTEM


def test_a_store_with_any_model_is_left_alone(store: Store, tmp_path: Path) -> None:
    assert ensure_default_model(store) is True
    store.copy(require_name(DEFAULT_MODEL), require_name("mine:1"))
    store.delete(require_name(DEFAULT_MODEL))
    assert ensure_default_model(store) is False
    assert store.get(require_name(DEFAULT_MODEL)) is None
