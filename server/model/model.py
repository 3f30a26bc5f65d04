"""A stored model resolved from its manifest: paths, template, system, params, messages.

This is what ``show`` reports and what the runners load.  It reads small text layers
eagerly and leaves the GGUF on disk; GGUF metadata is read on demand (memory-mapped).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from llamita.server.store.blobs import MEDIA_PREFIX, Manifest, Store
from llamita.server.store.names import Name
from llamita.server.template import DEFAULT_TEMPLATE, Template, TemplateError
from llamita.server.template import parse as parse_template

from .ggufinfo import GGUFInfo, read_gguf
from .template_index import jinja_capabilities


class ModelNotFound(LookupError):
    """Raised when a name has no manifest in the store."""

    def __init__(self, name: str, message: str = "model '{}' not found") -> None:
        super().__init__(message.format(name))
        self.name = name


@dataclass
class StoredModel:
    """Everything a request needs to know about one stored model."""

    name: Name
    manifest: Manifest
    config: dict[str, Any]
    model_path: Path | None
    adapter_paths: list[Path] = field(default_factory=list)
    projector_paths: list[Path] = field(default_factory=list)
    template_text: str = DEFAULT_TEMPLATE.source
    has_template_layer: bool = False
    system: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    licenses: list[str] = field(default_factory=list)
    parent_model: str = ""

    @property
    def short_name(self) -> str:
        return self.name.shortest

    @cached_property
    def template(self) -> Template | None:
        try:
            return parse_template(self.template_text)
        except TemplateError:
            return None

    @cached_property
    def gguf(self) -> GGUFInfo | None:
        if self.model_path is None or not self.model_path.is_file():
            return None
        try:
            return read_gguf(self.model_path)
        except (OSError, ValueError):
            return None

    @property
    def capabilities(self) -> list[str]:
        """Ollama's capability list: completion|embedding from the GGUF, the rest from the template."""
        caps: list[str] = list(self.config.get("capabilities") or [])

        def add(cap: str) -> None:
            if cap not in caps:
                caps.append(cap)

        info = self.gguf
        if info is not None:
            arch = info.architecture
            if f"{arch}.pooling_type" in info.kv:
                add("embedding")
            else:
                add("completion")
            if f"{arch}.vision.block_count" in info.kv or self.projector_paths:
                add("vision")
        template = self.template
        if template is not None:
            names = template.vars()
            if "tools" in names:
                add("tools")
            if "suffix" in names:
                add("insert")
            if "thinking" in names:
                add("thinking")
        if not self.has_template_layer and info is not None:  # no Go template: the Jinja one says
            for cap in jinja_capabilities(info.chat_template):
                add(cap)
        return caps

    def details(self) -> dict[str, Any]:
        return {
            "parent_model": self.parent_model,
            "format": self.config.get("model_format", ""),
            "family": self.config.get("model_family", ""),
            "families": self.config.get("model_families"),
            "parameter_size": self.config.get("model_type", ""),
            "quantization_level": self.config.get("file_type", ""),
        }


def load_model(store: Store, name: Name) -> StoredModel:
    """Resolve ``name`` (case-insensitively) into a :class:`StoredModel`.

    Models are kept in ``store.resolved`` by manifest digest: an editor sends several
    requests a second, and re-reading layers, re-parsing the template and the GGUF header
    each time would make the event loop, not the model, the bottleneck.  A re-created model
    has a new digest.
    """
    manifest = store.get(name)
    if manifest is None:
        raise ModelNotFound(name.shortest)
    cached = store.resolved.get(manifest.digest)
    if isinstance(cached, StoredModel) and cached.name == manifest.name:
        return cached
    model = _build(store, manifest)
    store.resolved.put(manifest.digest, model)
    return model


def _build(store: Store, manifest: Manifest) -> StoredModel:
    config: dict[str, Any] = {}
    if manifest.config.digest:
        try:
            config = json.loads(store.read_blob(manifest.config.digest))
        except (OSError, ValueError):
            config = {}
    model = StoredModel(name=manifest.name, manifest=manifest, config=config, model_path=None)
    for layer in manifest.layers:
        kind = layer.media_type.removeprefix(MEDIA_PREFIX)
        if kind == "model":
            model.model_path = store.blob_path(layer.digest)
            model.parent_model = layer.from_
        elif kind == "adapter":
            model.adapter_paths.append(store.blob_path(layer.digest))
        elif kind == "projector":
            model.projector_paths.append(store.blob_path(layer.digest))
        elif kind in ("template", "prompt"):
            model.template_text = store.read_blob(layer.digest).decode()
            model.has_template_layer = True
        elif kind == "system":
            model.system = store.read_blob(layer.digest).decode()
        elif kind == "params":
            model.options = json.loads(store.read_blob(layer.digest))
        elif kind == "messages":
            model.messages = json.loads(store.read_blob(layer.digest))
        elif kind == "license":
            model.licenses.append(store.read_blob(layer.digest).decode())
    return model
