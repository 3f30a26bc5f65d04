"""Prompt texts live in ``prompts/`` (installed as ``llamita.prompts``) and can be overridden.

A user's directory (``--prompts DIR`` or the config file's ``prompts_dir``) wins file by file,
so one prompt can be changed without copying the rest.  Placeholders are ``$name``
(``string.Template``), which leaves the braces of code and JSON alone.
"""

from __future__ import annotations

import string
from importlib import resources
from pathlib import Path


class PromptError(Exception):
    """A prompt file is missing or names a placeholder nobody fills."""


def load(name: str, override_dir: Path | None = None) -> str:
    if override_dir is not None:
        candidate = Path(override_dir) / name
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    try:
        return resources.files("llamita.prompts").joinpath(name).read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise PromptError(f"no prompt named {name}") from e


def render(name: str, override_dir: Path | None = None, **values: object) -> str:
    try:
        return string.Template(load(name, override_dir)).substitute({k: str(v) for k, v in values.items()})
    except KeyError as e:
        raise PromptError(f"prompt {name} uses ${e.args[0]}, which is not provided") from e
