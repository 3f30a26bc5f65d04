"""Model names, parsed and validated exactly as Ollama does.

Grammar (``[scheme://][host/][namespace/]model[:tag]``)::

    name      := [ [ scheme "://" ] host "/" ] [ namespace "/" ] model [ ":" tag ]
    host      := (alnum | "_") (alnum | "_" | "-" | "." | ":")*    1..350 chars
    namespace := (alnum | "_") (alnum | "_" | "-")*                1..80 chars
    model     := (alnum | "_") (alnum | "_" | "-" | ".")*          1..80 chars
    tag       := (alnum | "_") (alnum | "_" | "-" | ".")*          1..80 chars

Defaults: host ``registry.ollama.ai``, namespace ``library``, tag ``latest``, scheme
``https``.  The tag is split off at the last ``:`` only when it comes after the last ``/``
(so ``localhost:5000/team/coder`` keeps its port).  A separator with nothing on one side
makes that part invalid, which is why ``../x`` and ``a//b`` are rejected: the parts are
checked against the grammar, never used as paths before that.

Examples::

    llama3                 -> registry.ollama.ai/library/llama3:latest
    team/coder:1.0         -> registry.ollama.ai/team/coder:1.0
    localhost:5000/t/m:v1  -> localhost:5000/t/m:v1
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from llamita.server.gocompat.fmt import quote

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
DEFAULT_SCHEME = "https"

INVALID_NAME = "invalid model name"

_MISSING = "!MISSING!"
_PARTS = {
    "host": (re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:\-]*"), 350),
    "namespace": (re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]*"), 80),
    "model": (re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*"), 80),
    "tag": (re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*"), 80),
}


class InvalidName(ValueError):
    """Raised when a model name does not follow the grammar above."""

    def __init__(self, message: str = INVALID_NAME) -> None:
        super().__init__(message)


class ModelRequired(InvalidName):
    """Raised when a request names no model at all (neither ``model`` nor ``name``)."""

    def __init__(self) -> None:
        super().__init__("model is required")


@dataclass(frozen=True)
class Name:
    """A model reference; parts keep the casing the user (or the store) gave them."""

    host: str
    namespace: str
    model: str
    tag: str
    scheme: str = DEFAULT_SCHEME

    @property
    def is_valid(self) -> bool:
        for kind in ("host", "namespace", "model", "tag"):
            pattern, limit = _PARTS[kind]
            value = getattr(self, kind)
            if not 1 <= len(value) <= limit or not pattern.fullmatch(value):
                return False
        return True

    def __str__(self) -> str:
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    @property
    def parts(self) -> tuple[str, str, str, str]:
        return (self.host, self.namespace, self.model, self.tag)

    @property
    def shortest(self) -> str:
        """Ollama's DisplayShortest: drop the default host (and namespace)."""
        if self.host.lower() != DEFAULT_HOST:
            return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"
        if self.namespace.lower() != DEFAULT_NAMESPACE:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Case-folded identity: Ollama matches names case-insensitively."""
        return (self.host.lower(), self.namespace.lower(), self.model.lower(), self.tag.lower())

    def with_casing_of(self, other: Name) -> Name:
        return replace(other, scheme=self.scheme)


def _cut_last(s: str, sep: str) -> tuple[str, str, bool]:
    i = s.rfind(sep)
    if i < 0:
        return s, "", False
    return s[:i] or _MISSING, s[i + len(sep) :] or _MISSING, True


def parse_bare(s: str) -> tuple[str, str, str, str, str]:
    """Split ``s`` into (scheme, host, namespace, model, tag) without defaults."""
    scheme = host = namespace = tag = ""
    if s.rfind(":") > s.rfind("/"):
        s, tag, _ = _cut_last(s, ":")
    s, model, promised = _cut_last(s, "/")
    if not promised:
        return scheme, host, namespace, s, tag
    s, namespace, promised = _cut_last(s, "/")
    if not promised:
        return scheme, host, s, model, tag
    if "://" in s:
        scheme, host = s.split("://", 1)
    else:
        host = s
    return scheme, host, namespace, model, tag


def parse_name(s: str) -> Name:
    """Parse with Ollama's defaults; the result may be invalid (check ``is_valid``)."""
    scheme, host, namespace, model, tag = parse_bare(s)
    return Name(
        host=host or DEFAULT_HOST,
        namespace=namespace or DEFAULT_NAMESPACE,
        model=model,
        tag=tag or DEFAULT_TAG,
        scheme=scheme or DEFAULT_SCHEME,
    )


# Ollama's source suffixes (internal/modelref): ``name:local`` is the local model ``name``;
# ``:cloud`` would send the request to ollama.com, which llamita does not do (it is a tag here).
_SOURCE_SUFFIXES = ("local", "cloud")


def _source_suffix(s: str) -> tuple[str, str]:
    """(``s`` without its ``:local``/``:cloud`` suffix, the suffix or "")."""
    i = s.rfind(":")
    if i >= 0 and s[i + 1 :].strip().lower() in _SOURCE_SUFFIXES:
        return s[:i], s[i + 1 :].strip().lower()
    return s, ""


def parse_model_ref(s: str) -> Name:
    """A model as the inference and show routes read it (Ollama's ``parseAndValidateModelRef``):
    trimmed, a blank one is :class:`ModelRequired`, and ``smollm2:135m:local`` or ``smollm2:local``
    name the local ``smollm2:135m`` / ``smollm2:latest``.  The result may be invalid."""
    text = s.strip()
    if not text:
        raise ModelRequired()
    base, suffix = _source_suffix(text)
    if suffix and _source_suffix(base)[1]:
        raise InvalidName(f"use either :local or :cloud, not both: {quote(text)}")
    return parse_name(base if suffix == "local" else text)


def require_name(s: str, message: str = INVALID_NAME) -> Name:
    """Parse and validate, raising :class:`InvalidName` with ``message`` when invalid."""
    name = parse_name(s)
    if not name.is_valid:
        raise InvalidName(message)
    return name


def from_path_parts(parts: tuple[str, ...] | list[str]) -> Name | None:
    """Name from the four directory levels under ``manifests/``, or None if not a name."""
    if len(parts) != 4:
        return None
    name = Name(*parts)
    return name if name.is_valid else None
