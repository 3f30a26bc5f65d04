"""``/api/create``'s ``info`` map: Ollama's config overrides that no Modelfile can express.

Ollama (server/create.go) reads it after the layers are made: ``capabilities`` (a list) are
added to the config's, ``model_family``, ``base_name``, ``quantization_level`` and
``parameter_size`` (strings) and ``context_length``, ``embedding_length`` (non-negative whole
numbers) replace what the GGUF would say.  Any other key is ignored; a wrong type is a 400
with Ollama's words.
"""

from __future__ import annotations

import math
from typing import Any

# info key -> config field
_STRINGS = {
    "model_family": "model_family",
    "base_name": "base_name",
    "quantization_level": "file_type",
    "parameter_size": "model_type",
}
_COUNTS = ("context_length", "embedding_length")
_GO_MAX_INT = 2**63 - 1


class InfoError(ValueError):
    """An ``info`` value of the wrong type (the create is refused with a 400)."""


def apply_info(info: dict[str, Any] | None, config: dict[str, Any]) -> None:
    """Write ``info``'s overrides into the create's ``config`` (its keys are ConfigV2's)."""
    if info is None:
        return
    caps = info.get("capabilities")
    if isinstance(caps, list):  # Go leaves "" where an entry is not a string
        given = [c if isinstance(c, str) else "" for c in caps]
        config["capabilities"] = [*(config.get("capabilities") or []), *given]
    for key, field in _STRINGS.items():
        if key in info:
            if not isinstance(info[key], str):
                raise InfoError(f'info field "{key}" must be a string')
            config[field] = info[key]
    if config.get("model_family"):
        config["model_families"] = [config["model_family"]]  # the GGUF's architecture follows
    for key in _COUNTS:
        if key not in info:
            continue
        value = info[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InfoError(f'info field "{key}" must be a number')
        if not math.isfinite(value) or value < 0 or value != int(value) or value > _GO_MAX_INT:
            raise InfoError(f'info field "{key}" must be a non-negative integer')
        config[key] = int(value)
