"""The one Go JSON encoder: bytes exactly as Go's ``json.Marshal`` / ``json.NewEncoder(w).Encode``.

Ollama names blobs and manifests by the sha256 of these bytes, and models see the template
``json`` builtin's output, so both go through here.  Go's rules: compact separators, map keys
sorted, ``<`` ``>`` ``&`` U+2028 U+2029 escaped as ``\\u003c``-style sequences, non-ASCII left
as UTF-8, floats in Go's shortest form (``1`` not ``1.0``, ``1e-7`` not ``1e-07``, ``1e+21``),
``[]byte`` as base64, and (for :func:`encode`) a trailing newline.

Python stand-ins for Go types:

- a :class:`Struct`, or any mapping with ``go_ordered = True``, keeps insertion order (a Go
  struct, or Ollama's ordered maps); other mappings are sorted maps;
- a dataclass is a struct: fields in declaration order, renamed and dropped by
  ``metadata["json"]`` tags such as ``"name,omitempty"`` (``metadata["json_nilable"]`` marks
  an interface/pointer field, which only nil empties);
- ``go_nil = True`` on a list or dict is a nil slice/map (``null``);
- a class with ``__go_json__`` encodes itself (Go's ``json.Marshaler``).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from .fmt import json_float as format_float

__all__ = ["Struct", "encode", "format_float", "marshal"]

_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


class Struct(dict[str, Any]):
    """A dict encoded in insertion order, like a Go struct (maps are sorted instead)."""

    go_ordered = True


def _string(s: str) -> str:
    out = json.dumps(s, ensure_ascii=False)
    for raw, esc in _ESCAPES.items():
        if raw in out:
            out = out.replace(raw, esc)
    return out


def _omit(value: Any, field: dataclasses.Field[Any]) -> bool:
    """``omitempty``: false, 0, "", and empty slices and maps are left out; nil always is."""
    if value is None:
        return True
    if field.metadata.get("json_nilable"):  # interface/pointer field: only nil counts as empty
        return False
    if isinstance(value, (bool, int, float, str, bytes, list, tuple, dict, Mapping)):
        return not value
    return False


def _encode(value: Any, out: list[str]) -> None:
    if value is None or getattr(value, "go_nil", False):
        out.append("null")
        return
    hook = getattr(type(value), "__go_json__", None)
    if hook is not None:
        out.append(hook(value))
    elif isinstance(value, bool):
        out.append("true" if value else "false")
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, float):
        out.append(format_float(float(value)))
    elif isinstance(value, str):
        out.append(_string(str(value)))
    elif isinstance(value, (bytes, bytearray)):
        out.append('"' + base64.b64encode(bytes(value)).decode() + '"')
    elif isinstance(value, Mapping):
        items = list(value.items())
        if not getattr(value, "go_ordered", False):
            items.sort(key=lambda kv: str(kv[0]).encode())
        _object([(str(k), v) for k, v in items], out)
    elif isinstance(value, Sequence):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    elif dataclasses.is_dataclass(value):
        fields = []
        for field in dataclasses.fields(value):
            name, _, opts = str(field.metadata.get("json", field.name)).partition(",")
            item = getattr(value, field.name)
            if name == "-" or ("omitempty" in opts.split(",") and _omit(item, field)):
                continue
            fields.append((name or field.name, item))
        _object(fields, out)
    elif hasattr(value, "__dict__"):
        _object([(k, v) for k, v in vars(value).items() if not k.startswith("_")], out)
    else:
        out.append(_string(str(value)))


def _object(items: list[tuple[str, Any]], out: list[str]) -> None:
    out.append("{")
    for i, (key, item) in enumerate(items):
        if i:
            out.append(",")
        out.append(_string(key))
        out.append(":")
        _encode(item, out)
    out.append("}")


def marshal(value: Any) -> str:
    """``json.Marshal``: no trailing newline (API bodies, the template ``json`` builtin)."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out)


def encode(value: Any) -> bytes:
    """``json.NewEncoder(w).Encode``: the bytes Ollama writes to blobs and manifests."""
    return (marshal(value) + "\n").encode()
