"""JSON bytes exactly as Go's ``json.NewEncoder(w).Encode(v)`` writes them.

Ollama names blobs and manifests by the sha256 of these bytes, so matching Ollama's digests
for the same inputs means matching Go's encoder: compact separators, map keys sorted, ``<``
``>`` ``&`` U+2028 U+2029 escaped as ``\\u003c``-style sequences, non-ASCII left as UTF-8,
floats in Go's shortest form (``1`` not ``1.0``, ``1e-7`` not ``1e-07``, ``1e+21``) and a
trailing newline.  Struct-shaped values keep their field order: pass them as dicts built in
struct order with ``sort_keys=False`` semantics by wrapping them in :class:`Struct`.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


class Struct(dict[str, Any]):
    """A dict encoded in insertion order, like a Go struct (maps are sorted instead)."""


def _string(s: str) -> str:
    out = json.dumps(s, ensure_ascii=False)
    for raw, esc in _ESCAPES.items():
        if raw in out:
            out = out.replace(raw, esc)
    return out


def format_float(value: float, bits: int = 64) -> str:
    """Go's ``encoding/json`` float formatting (strconv 'f' or 'e' with cleaned exponent)."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"json: unsupported value: {value}")
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    digits = shortest_repr(value, bits)
    mantissa, _, exp_part = digits.partition("e")
    exponent = int(exp_part) if exp_part else 0
    sign = "-" if mantissa.startswith("-") else ""
    mantissa = mantissa.lstrip("-")
    whole, _, frac = mantissa.partition(".")
    all_digits = (whole + frac).lstrip("0") or "0"
    # Decimal exponent of the first significant digit.
    point = len(whole) + exponent if whole != "0" else exponent - (len(frac) - len(frac.lstrip("0")))
    stripped = all_digits.rstrip("0") or "0"
    magnitude = abs(value)
    if magnitude < 1e-6 or magnitude >= 1e21:
        first, rest = stripped[0], stripped[1:]
        exp = point - 1
        body = f"{first}.{rest}" if rest else first
        return f"{sign}{body}e{'-' if exp < 0 else '+'}{abs(exp)}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{stripped}"
    if point >= len(stripped):
        return f"{sign}{stripped}{'0' * (point - len(stripped))}"
    return f"{sign}{stripped[:point]}.{stripped[point:]}"


def shortest_repr(value: float, bits: int = 64) -> str:
    """Shortest decimal that reads back as the same float64 (or float32 when ``bits=32``)."""
    if bits == 64:
        return repr(float(value))
    target = struct.unpack("<f", struct.pack("<f", value))[0]
    for precision in range(1, 10):
        text = f"{target:.{precision}g}"
        if struct.unpack("<f", struct.pack("<f", float(text)))[0] == target:
            return text
    return repr(target)


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(format_float(value))
    elif isinstance(value, Struct):
        _encode_items(list(value.items()), out)
    elif isinstance(value, Mapping):
        _encode_items(sorted(value.items(), key=lambda kv: str(kv[0]).encode()), out)
    elif isinstance(value, Sequence | tuple) and not isinstance(value, bytes | bytearray):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"json: unsupported type: {type(value).__name__}")


def _encode_items(items: list[tuple[Any, Any]], out: list[str]) -> None:
    out.append("{")
    for i, (key, item) in enumerate(items):
        if i:
            out.append(",")
        out.append(_string(str(key)))
        out.append(":")
        _encode(item, out)
    out.append("}")


def marshal(value: Any) -> str:
    """``json.Marshal``: no trailing newline (used for API bodies and template ``json``)."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out)


def encode(value: Any) -> bytes:
    """``json.NewEncoder(w).Encode``: the bytes Ollama writes to blobs and manifests."""
    return (marshal(value) + "\n").encode()
