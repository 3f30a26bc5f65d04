"""Fill-in-the-middle request bodies for ``/api/generate``.

Three paths, chosen from ``/api/show``:

- **Suffix template** (the model has the ``insert`` capability): ``prompt`` = prefix, ``suffix`` =
  suffix, and the model's own Ollama template places its FIM tokens. Works with any correctly packaged
  coder model and needs no per-model knowledge here.
- **Raw** (no ``insert``): ``raw: true`` and a prompt rendered from a per-family template in
  ``prompts/fim/<family>.txt`` (user-overridable), with that family's stop strings. The family comes from
  the ``fimTemplate`` setting, else from the model name and ``details.family``; StarCoder's tokens are the
  fallback, as in Continue, when ``fimTemplate`` names no family.
- **Chat fill-in** (no ``insert`` and no family matches, or ``fimTemplate`` = ``chat``): see
  :mod:`.chatfill`.

Template file format: ``#`` comment lines and ``stop: <text>`` lines (``\\n``, ``\\t`` escapes), then a
``---`` line, then the template with ``$prefix`` and ``$suffix`` (``string.Template``, like every prompt
file); the file's final newline is not part of the template.
"""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llamita.lsp import prompts

from .context import Window
from .syntax import Mode

DEFAULT_FAMILY = "starcoder2"
SINGLE_LINE_NUM_PREDICT = 48
_FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("qwen2.5-coder", ("qwen", "coder")),
    ("deepseek-coder", ("deepseek",)),
    ("codellama", ("codellama",)),
    ("codellama", ("code-llama",)),
    ("codegemma", ("codegemma",)),
    ("codestral", ("codestral",)),
    ("starcoder2", ("starcoder",)),
)


class TemplateError(ValueError):
    """Raised when a FIM template file has no ``---`` separator or lacks ``$prefix``."""


@dataclass(frozen=True)
class FimTemplate:
    name: str
    template: str
    stop: tuple[str, ...]

    def render(self, prefix: str, suffix: str) -> str:
        return string.Template(self.template).substitute(prefix=prefix, suffix=suffix)


def parse_template(name: str, text: str) -> FimTemplate:
    header, sep, body = ("\n" + text).partition("\n---\n")
    if not sep:
        raise TemplateError(f"FIM template {name!r}: no '---' line before the template")
    if body.endswith("\n"):
        body = body[:-1]
    fields = string.Template(body)
    if not fields.is_valid() or set(fields.get_identifiers()) - {"prefix", "suffix"}:
        raise TemplateError(f"FIM template {name!r}: only $prefix and $suffix may follow a '$' ($$ for '$')")
    if "prefix" not in fields.get_identifiers():
        raise TemplateError(f"FIM template {name!r}: no $prefix placeholder")
    values = (line[len("stop: ") :] for line in header.split("\n") if line.startswith("stop: "))
    stops = tuple(v.replace("\\n", "\n").replace("\\t", "\t") for v in values if v)
    return FimTemplate(name, body, stops)


@functools.lru_cache(maxsize=32)
def load_template(name: str, override_dir: str = "") -> FimTemplate:
    directory = Path(override_dir).expanduser() if override_dir else None
    return parse_template(name, prompts.load(f"fim/{name}.txt", directory))


def known_family(model: str, family: str = "") -> str:
    """The FIM family whose template matches ``model`` by name or ``details.family``; "" for none."""
    haystack = f"{model} {family}".lower()
    for name, needles in _FAMILIES:
        if all(needle in haystack for needle in needles):
            return name
    return ""


def family_for(model: str, family: str = "", forced: str = "") -> str:
    """Which raw FIM template fits ``model`` (its name and ``/api/show`` ``details.family``)."""
    return forced or known_family(model, family) or DEFAULT_FAMILY


def options(mode: Mode, num_predict: int, temperature: float, stop: list[str]) -> dict[str, Any]:
    """Generation options for FIM: short, nearly greedy, and cut at a newline in single-line mode."""
    stops = list(dict.fromkeys([*stop, *(["\n"] if mode is Mode.SINGLE else [])]))
    limit = min(num_predict, SINGLE_LINE_NUM_PREDICT) if mode is Mode.SINGLE else num_predict
    opts: dict[str, Any] = {"num_predict": limit, "temperature": temperature, "top_p": 0.9}
    if stops:
        opts["stop"] = stops
    return opts


def request_body(
    model: str,
    window: Window,
    mode: Mode,
    *,
    snippets: str = "",
    template: FimTemplate | None = None,
    num_predict: int = 128,
    temperature: float = 0.2,
    stop: list[str] | None = None,
    keep_alive: str = "",
) -> dict[str, Any]:
    """The ``/api/generate`` body: native FIM when ``template`` is None, raw mode otherwise."""
    prefix = snippets + window.prefix
    # Ollama treats an empty suffix as "no FIM"; a newline keeps the FIM branch (Continue does the same).
    suffix = window.suffix or "\n"
    extra_stop = list(stop or [])
    body: dict[str, Any] = {"model": model}
    if template is None:
        body |= {"prompt": prefix, "suffix": suffix}
    else:
        body |= {"prompt": template.render(prefix, suffix), "raw": True}
        extra_stop = [*template.stop, *extra_stop]
    body["options"] = options(mode, num_predict, temperature, extra_stop)
    if keep_alive:
        body["keep_alive"] = keep_alive
    return body
