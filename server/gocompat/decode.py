"""Decoding JSON the way Go's ``encoding/json`` does, so hostile request bodies are a 400.

Every route reads its body through :func:`decode` (``read_json``); what it returns is safe to
hand to any later code (template rendering, ``json.dumps``, UTF-8 encoding, recursion).
:func:`check_struct` then gives Go's answer to a field of the wrong JSON type.

* ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON; Go rejects them and so do we.
* A number outside float64's range (``1e400``, an integer of 309+ digits) is an error in Go
  (``cannot unmarshal number … into Go value of type float64``).  Python would turn the first
  into ``inf`` and choke on a 4,300-digit integer with a ``ValueError`` (its int-str limit).
* Nesting is capped at :data:`MAX_DEPTH`.  Go allows 10,000 levels; Python's recursion limit
  (about 1,000 frames, shared with the server's own stack) cannot, and every recursive consumer
  of the value (encoders, template printing) would need the same headroom.  No API body is
  anywhere near this deep (tool schemas are a dozen levels).
* Invalid UTF-8 bytes and lone UTF-16 surrogate escapes (``"\\ud800"``) inside strings become
  U+FFFD, as Go does, instead of a ``str`` that cannot be encoded to UTF-8 later.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 200
"""Deepest nesting of arrays/objects a request body may have."""

# Integers with more digits than this are beyond float64's range (1.8e308) anyway; checking the
# length first means Python never converts a huge digit string.
_MAX_INT_DIGITS = 309
_FLOAT64_MAX = 1.7976931348623157e308
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATES = re.compile("[\ud800-\udfff]")


class BodyError(ValueError):
    """The body is not a JSON value Go's decoder would accept; ``str()`` is the reason."""


def _parse_int(text: str) -> int:
    digits = len(text) - (text[0] == "-")
    if digits > _MAX_INT_DIGITS or abs(value := int(text)) > _FLOAT64_MAX:
        raise BodyError(f"number {_abbreviate(text)} is out of range")
    return value


def _parse_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise BodyError(f"number {_abbreviate(text)} is out of range")
    return value


def _parse_constant(name: str) -> Any:
    raise BodyError(f"invalid character '{name[0]}' looking for beginning of value ({name} is not JSON)")


def _abbreviate(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:12]}…{text[-4:]} ({len(text)} characters)"


_DECODER = json.JSONDecoder(parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)


def _clean_text(text: str) -> str:
    return _SURROGATES.sub("\ufffd", text)


def _check(value: Any, clean: bool) -> Any:
    """Enforce MAX_DEPTH and (when ``clean``) replace lone surrogates, without recursion."""
    root = [value]
    stack: list[tuple[list[Any] | dict[str, Any], int]] = [(root, 0)]
    while stack:
        container, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BodyError(f"nesting depth exceeds {MAX_DEPTH}")
        if isinstance(container, dict):
            if clean and any(_SURROGATES.search(key) for key in container):
                items = [(_clean_text(k), v) for k, v in container.items()]
                container.clear()
                container.update(items)
            entries: Any = container.items()
        else:
            entries = enumerate(container)
        for key, item in list(entries):
            if isinstance(item, (dict, list)):
                stack.append((item, depth + 1))
            elif clean and isinstance(item, str):
                container[key] = _clean_text(item)
    return root[0]


def decode(raw: bytes) -> Any:
    """Decode a request body; raises :class:`BodyError` with a Go-like reason."""
    text = raw.decode("utf-8", errors="replace")
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as e:
        raise BodyError(f"{e.msg} at offset {e.pos}") from e
    except RecursionError as e:
        raise BodyError(f"nesting depth exceeds {MAX_DEPTH}") from e
    clean = _SURROGATE_ESCAPE.search(raw) is not None
    if clean or raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        value = _check(value, clean)
    return value


# ---- Go struct field types -----------------------------------------------------------------
# A request struct is described as {json name: Go type}; check_struct answers what Go's decoder
# answers when a field holds the wrong kind of JSON value.  ``null`` is always accepted (Go leaves
# the zero value), as is any key the struct does not have.

MESSAGE_FIELDS: dict[str, str] = {
    "role": "string",
    "content": "string",
    "thinking": "string",
    "images": "[]api.ImageData",
    "tool_calls": "[]api.ToolCall",
    "tool_name": "string",
    "tool_call_id": "string",
}


def go_kind(value: Any) -> str:
    """How Go's encoding/json names a JSON value's kind in an unmarshal error."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class UnmarshalError(ValueError):
    """A JSON value Go's decoder refuses for its Go type; ``str()`` is Go's message."""


class FieldTypeError(UnmarshalError):
    """A struct field of the wrong JSON type (Go's ``cannot unmarshal X into Go struct field``).

    A number that does not fit an integer field is quoted, as Go does (``number 1.5``).
    """

    def __init__(self, value: Any, path: str, go_type: str) -> None:
        kind = go_kind(value)
        if kind == "number" and go_type == "int":
            kind = f"number {value}"
        super().__init__(f"json: cannot unmarshal {kind} into Go struct field {path} of type {go_type}")


def check_value(value: Any, go_type: str, path: str) -> None:
    """Raise :class:`FieldTypeError` if ``value`` (at ``Struct.field``) is not a JSON ``go_type``."""
    if value is None or go_type == "interface {}":
        return
    if go_type == "string":
        ok = isinstance(value, str)
    elif go_type == "bool":
        ok = isinstance(value, bool)
    elif go_type.startswith("map[string]"):
        if not isinstance(value, dict):
            raise FieldTypeError(value, path, go_type)
        for item in value.values():
            check_value(item, go_type.removeprefix("map[string]"), path)
        return
    elif go_type.startswith("[]"):
        if not isinstance(value, list):
            raise FieldTypeError(value, path, go_type)
        for item in value:
            check_value(item, go_type[2:], path)
        return
    elif go_type == "api.Message":
        if not isinstance(value, dict):
            raise FieldTypeError(value, path, go_type)
        for key, item_type in MESSAGE_FIELDS.items():
            check_value(value.get(key), item_type, f"Message.{path.rsplit('.', 1)[-1]}.{key}")
        return
    elif go_type == "api.ImageData":  # []byte: base64 text in JSON
        ok = isinstance(value, str)
    elif go_type == "api.ToolCall":
        ok = isinstance(value, dict)
    else:  # pragma: no cover - a spec typo
        raise AssertionError(f"unknown Go type {go_type}")
    if not ok:
        raise FieldTypeError(value, path, go_type)


def check_struct(body: dict[str, Any], struct: str, fields: dict[str, str]) -> None:
    """Raise :class:`FieldTypeError` for the first field whose JSON kind Go would refuse."""
    for name, go_type in fields.items():
        if name in body:
            check_value(body[name], go_type, f"{struct}.{name}")
