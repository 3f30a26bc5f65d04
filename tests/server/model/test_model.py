"""StoredModel and load_model: a manifest resolved into what requests need, on real tiny GGUFs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ggufgen import write_tiny_gguf
from llamita.server.model.create import create, import_gguf
from llamita.server.model.model import ModelNotFound, StoredModel, load_model
from llamita.server.store.blobs import Store
from llamita.server.store.names import require_name
from llamita.server.template import DEFAULT_TEMPLATE


@pytest.fixture
def tiny(store: Store, tmp_path: Path) -> Store:
    """``tiny`` (a bare GGUF, no template) and ``tiny-embed`` (mean pooling) in the store."""
    import_gguf(store, "tiny", write_tiny_gguf(tmp_path / "tiny.gguf", fim=False))
    import_gguf(store, "tiny-embed", write_tiny_gguf(tmp_path / "embed.gguf", fim=False, pooling="mean"))
    return store


def _create(store: Store, request: dict) -> None:
    assert list(create(store, request))[-1] == {"status": "success"}


def test_bare_gguf_gets_the_default_template(tiny: Store) -> None:
    model = load_model(tiny, require_name("tiny"))
    assert isinstance(model, StoredModel)
    assert model.short_name == "tiny:latest"
    assert model.template_text == DEFAULT_TEMPLATE.source == "{{ .Prompt }}"
    assert not model.has_template_layer
    assert model.model_path is not None and model.model_path.is_file()
    assert (model.system, model.options, model.messages, model.licenses) == ("", {}, [], [])
    assert model.parent_model == "tiny.gguf"  # the model layer's "from": the file it came from (Ollama)
    assert model.capabilities == ["completion"]
    assert model.details() == {
        "parent_model": "tiny.gguf",
        "format": "gguf",
        "family": "llama",
        "families": ["llama"],
        "parameter_size": model.config["model_type"],
        "quantization_level": "F16",
    }


def test_every_layer_is_read(tiny: Store) -> None:
    template = "{{ if .Tools }}tools{{ end }}{{ .Suffix }}{{ .Thinking }}{{ .Prompt }}"
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    _create(
        tiny,
        {
            "model": "Full",
            "from": "tiny",
            "template": template,
            "system": "be brief",
            "parameters": {"temperature": 0.5, "stop": ["a", "b"]},
            "messages": messages,
            "license": ["MIT", "Apache-2.0"],
        },
    )
    model = load_model(tiny, require_name("full"))  # names resolve case-insensitively
    assert model.short_name == "Full:latest"
    assert model.has_template_layer and model.template_text == template
    assert model.system == "be brief"
    assert model.options == {"temperature": 0.5, "stop": ["a", "b"]}
    assert model.messages == messages
    assert model.licenses == ["MIT", "Apache-2.0"]
    assert model.parent_model == "tiny:latest"
    assert model.capabilities == ["completion", "tools", "insert", "thinking"]


def test_embedding_model_capability(tiny: Store) -> None:
    assert load_model(tiny, require_name("tiny-embed")).capabilities == ["embedding"]


def test_a_broken_template_leaves_the_model_usable(tiny: Store) -> None:
    model = load_model(tiny, require_name("tiny"))
    broken = StoredModel(
        model.name, model.manifest, model.config, model.model_path, template_text="{{ .Prompt"
    )
    assert broken.template is None
    assert broken.capabilities == ["completion"]


def test_missing_gguf_has_no_metadata(tiny: Store, tmp_path: Path) -> None:
    model = load_model(tiny, require_name("tiny"))
    gone = StoredModel(model.name, model.manifest, model.config, tmp_path / "nowhere.gguf")
    assert gone.gguf is None
    assert gone.capabilities == []


def test_unknown_name(tiny: Store) -> None:
    with pytest.raises(ModelNotFound, match="model 'nope:latest' not found") as info:
        load_model(tiny, require_name("nope"))
    assert info.value.name == "nope:latest"


def test_models_are_cached_per_manifest_and_per_store(tiny: Store, tmp_path: Path) -> None:
    first = load_model(tiny, require_name("tiny"))
    assert load_model(tiny, require_name("tiny")) is first
    _create(tiny, {"model": "tiny", "from": "tiny", "system": "now with a system"})
    again = load_model(tiny, require_name("tiny"))  # a re-created model has a new digest
    assert again is not first and again.system == "now with a system"

    other = Store(tiny.root)  # another store over the same files shares no state
    assert load_model(other, require_name("tiny")) is not again
