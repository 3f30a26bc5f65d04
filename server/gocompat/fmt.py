"""Go's ``fmt`` and ``strconv`` printing rules for the Python values that stand in for Go ones.

Models, users and tests see this text: template output (``{{ . }}``, ``print``, ``printf``),
Ollama's error messages (``%q``) and the parameter lists of ``show`` and the REPL.  Each
function says which Go verb it is.  Python stand-ins: ``None`` is nil, a mapping is a
``map[string]any`` (printed with sorted keys), ``list``/``tuple`` a slice, a dataclass a
struct (``{a b}``), and a class with its own ``__str__`` a ``fmt.Stringer``.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

_SHORT_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
_BUILTIN_SCALARS = (str, bool, int, float, complex, bytes, bytearray, list, tuple, dict)
_TYPE_NAMES = {
    str: "string",
    bool: "bool",
    int: "int",
    float: "float64",
    complex: "complex128",
    bytes: "[]uint8",
    bytearray: "[]uint8",
    list: "[]interface {}",
    tuple: "[]interface {}",
    dict: "map[string]interface {}",
}


# --------------------------------------------------------------------------- values


def is_stringer(v: Any) -> bool:
    """True for objects whose class provides its own ``__str__`` (Go's ``fmt.Stringer``)."""
    cls = type(v)
    return cls not in _BUILTIN_SCALARS and cls.__str__ is not object.__str__


def go_type_name(v: Any) -> str:
    """``%T``: the Go type name of a Python stand-in value (also used in error messages)."""
    if v is None:
        return "<nil>"
    if callable(v) and not dataclasses.is_dataclass(v):
        return "func"
    return _TYPE_NAMES.get(type(v), type(v).__name__)


def _sort_key(k: Any) -> tuple[int, Any]:
    if isinstance(k, bool):
        return 0, k
    if isinstance(k, (int, float)):
        return 1, k
    if isinstance(k, str):
        return 2, k
    return 3, str(k)


def sorted_items(m: Mapping[Any, Any]) -> list[tuple[Any, Any]]:
    """Map entries in Go's ``fmtsort`` order (what ``%v`` and template ``range`` use)."""
    return sorted(m.items(), key=lambda kv: _sort_key(kv[0]))


# --------------------------------------------------------------------------- strconv


def quote(s: str) -> str:
    """``%q`` of a string: Go's ``strconv.Quote`` (printable characters stay as they are)."""
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        else:
            code = ord(ch)
            if code < 0x20 or code == 0x7F:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


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


def _shortest_digits(f: float, bits: int) -> tuple[str, int]:
    """Shortest round-trip digits of ``|f|`` and the decimal point position (``0.DIGITS × 10**dp``)."""
    if f == 0:
        return "0", 1
    _, digits, exp = Decimal(shortest_repr(abs(f), bits)).normalize().as_tuple()
    text = "".join(map(str, digits))
    return text, len(text) + int(exp)


def json_float(value: float, bits: int = 64) -> str:
    """``encoding/json``'s float: shortest digits, ``e`` form below 1e-6 and from 1e21 on
    (exponent without padding: ``1e-7``, ``1e+21``), ``-0`` kept; NaN and Inf are errors."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"json: unsupported value: {format_float(value)}")
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        mantissa, _, exp = format_float(value, "e", bits).partition("e")
        return f"{mantissa}e{exp[0]}{int(exp[1:])}"
    return format_float(value, "f", bits)


def format_float(f: float, mode: str = "g", bits: int = 64) -> str:
    """``strconv.FormatFloat(f, mode, -1, bits)`` for ``mode`` in e, f, g (``g`` is what ``%v`` uses)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, f) < 0 else ""
    digits, dp = _shortest_digits(f, bits)
    if mode == "g":
        mode = "e" if dp - 1 < -4 or dp - 1 >= 6 else "f"
    if mode == "e":
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        exp = dp - 1
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if dp <= 0:
        return f"{sign}0.{'0' * -dp}{digits}"
    if dp >= len(digits):
        return sign + digits + "0" * (dp - len(digits))
    return f"{sign}{digits[:dp]}.{digits[dp:]}"


# --------------------------------------------------------------------------- %v


def format_value(v: Any, top: bool = True) -> str:
    """``%v`` as ``text/template`` prints it; a nil at the top of an action prints ``<no value>``."""
    if v is None:
        return "<no value>" if top else "<nil>"
    cls = type(v)
    if cls is str:
        return v
    if cls is bool:
        return "true" if v else "false"
    if cls is int:
        return str(v)
    if cls is float:
        return format_float(v)
    if is_stringer(v) or isinstance(v, str):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        return format_float(float(v))
    if isinstance(v, (bytes, bytearray)):
        return "[" + " ".join(str(b) for b in v) + "]"
    if isinstance(v, Mapping):
        pairs = (f"{format_value(k, False)}:{format_value(x, False)}" for k, x in sorted_items(v))
        return "map[" + " ".join(pairs) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(format_value(x, False) for x in v) + "]"
    if dataclasses.is_dataclass(v):
        return "{" + " ".join(format_value(getattr(v, f.name), False) for f in dataclasses.fields(v)) + "}"
    return str(v)


def param_value(value: Any, bits: int = 64) -> str:
    """``%v`` of a model parameter (bool, int, string, float or a list of them), as Ollama's CLI
    and Modelfile writer print it; floats in ``encoding/json``'s shortest form, as float32
    when ``bits=32`` (the REPL's typed ``/set parameter`` values)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return json_float(value, bits)
    if isinstance(value, list):
        return "[" + " ".join(param_value(v, bits) for v in value) + "]"
    return str(value)


def param_literal(value: Any) -> str:
    """``%#v`` of a JSON-decoded parameter: strings quoted, anything else as :func:`param_value`."""
    if isinstance(value, str):
        return quote(value)
    return param_value(value)


# --------------------------------------------------------------------------- Sprint family


def sprint(*args: Any) -> str:
    """``fmt.Sprint``: a space goes between operands when neither side is a string."""
    out: list[str] = []
    prev_string = False
    for i, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if i and not is_string and not prev_string:
            out.append(" ")
        out.append(format_value(arg, False))
        prev_string = is_string
    return "".join(out)


def sprintln(*args: Any) -> str:
    """``fmt.Sprintln``: operands always spaced, and a newline."""
    return " ".join(format_value(a, False) for a in args) + "\n"


# --------------------------------------------------------------------------- Sprintf


def _pad(text: str, width: int | None, flags: str, numeric: bool) -> str:
    if width is None or len(text) >= width:
        return text
    if "-" in flags:
        return text.ljust(width)
    if "0" in flags and numeric:
        sign = text[0] if text[:1] in ("-", "+", " ") else ""
        return sign + text[len(sign) :].rjust(width - len(sign), "0")
    if "0" in flags and not numeric:
        return text.rjust(width, "0")
    return text.rjust(width)


def _signed(text: str, negative: bool, flags: str) -> str:
    if negative:
        return "-" + text
    if "+" in flags:
        return "+" + text
    return (" " + text) if " " in flags else text


def _format_int(v: int, verb: str, flags: str, prec: int | None) -> str | None:
    n = abs(v)
    if verb in "dv":
        digits = str(n)
    elif verb in "xX":
        digits = format(n, "x" if verb == "x" else "X")
        if "#" in flags:
            digits = ("0x" if verb == "x" else "0X") + digits
    elif verb == "o":
        digits = ("0" if "#" in flags else "") + format(n, "o")
    elif verb == "O":
        digits = "0o" + format(n, "o")
    elif verb == "b":
        digits = format(n, "b")
    elif verb == "c":
        return chr(v) if 0 <= v <= 0x10FFFF else "\ufffd"
    elif verb == "q":
        return "'" + quote(chr(v))[1:-1].replace("'", "\\'").replace('\\"', '"') + "'"
    elif verb == "U":
        return f"U+{v:04X}"
    else:
        return None
    if prec is not None and verb in "dv":
        digits = digits.rjust(prec, "0")
    return _signed(digits, v < 0, flags)


def _format_float_verb(v: float, verb: str, flags: str, prec: int | None) -> str | None:
    if math.isnan(v) or math.isinf(v):
        return format_float(v)  # Go prints NaN/+Inf/-Inf whatever the verb
    negative = math.copysign(1.0, v) < 0
    a = abs(v)
    if verb in "fF":
        text = f"{a:.{6 if prec is None else prec}f}"
    elif verb in "eE":
        text = f"{a:.{6 if prec is None else prec}e}"
    elif verb in "gGv":
        text = format_float(a) if prec is None else f"{a:.{prec}g}"
    else:
        return None
    if verb in "EG":
        text = text.upper()
    return _signed(text, negative, flags)


def _format_verb(
    arg: Any, verb: str, flags: str, width: int | None, prec: int | None, nested: bool = False
) -> str:
    """Format one operand; containers apply the verb to each element, as Go's fmt does."""
    numeric = False
    text: str | None
    if arg is None:
        text = "<nil>" if nested or verb in "vT" else f"%!{verb}(<nil>)"
    elif verb == "T":
        text = go_type_name(arg)
    elif isinstance(arg, bool):
        text = ("true" if arg else "false") if verb in "tv" else None
    elif isinstance(arg, int):
        text = _format_int(arg, verb, flags, prec)
        numeric = True
    elif isinstance(arg, float):
        text = _format_float_verb(arg, verb, flags, prec)
        numeric = True
    elif isinstance(arg, (str, bytes, bytearray)) or (verb in "sqv" and is_stringer(arg)):
        text = _format_text(arg, verb, flags, prec)
    elif isinstance(arg, (list, tuple)):
        text = "[" + " ".join(_format_verb(x, verb, flags, None, prec, True) for x in arg) + "]"
    elif isinstance(arg, Mapping):
        pairs = (
            _format_verb(k, verb, flags, None, prec, True)
            + ":"
            + _format_verb(x, verb, flags, None, prec, True)
            for k, x in sorted_items(arg)
        )
        text = "map[" + " ".join(pairs) + "]"
    elif verb in "vs":
        text = format_value(arg, False)
    else:
        text = None
    if text is None:
        text = f"%!{verb}({go_type_name(arg)}={format_value(arg, False)})"
    return _pad(text, width, flags, numeric)


def _format_text(arg: Any, verb: str, flags: str, prec: int | None) -> str | None:
    if verb == "v" and isinstance(arg, (bytes, bytearray)):
        return format_value(arg, False)
    s = arg.decode("utf-8", "replace") if isinstance(arg, (bytes, bytearray)) else str(arg)
    if verb in "sv":
        return s if prec is None else s[:prec]
    if verb == "q":
        return quote(s if prec is None else s[:prec])
    if verb in "xX":
        sep = " " if " " in flags else ""
        return sep.join(format(b, "02x" if verb == "x" else "02X") for b in s.encode())
    return None


def _parse_num(fmt: str, i: int) -> tuple[int | None, int]:
    """Go's ``parsenum``: a width or precision over 1e6 is "crazy long" and eats the format.

    That is what keeps ``printf "%999999999d"`` from allocating a gigabyte (Go prints
    ``%!(NOVERB)``).
    """
    num, start = 0, i
    while i < len(fmt) and "0" <= fmt[i] <= "9":
        if num > 1_000_000:
            return None, len(fmt)
        num = num * 10 + ord(fmt[i]) - 48
        i += 1
    return (num if i > start else None), i


def sprintf(fmt: str, *args: Any) -> str:
    """``fmt.Sprintf`` for the common verbs (v s d q f e g x X o b c t T U %) with flags/width/precision."""
    out: list[str] = []
    argi, i, n = 0, 0, len(fmt)
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        i = j + 1
        start = i
        while i < n and fmt[i] in "+-# 0":
            i += 1
        flags = fmt[start:i]
        width, i = _parse_num(fmt, i)
        prec = None
        if i < n and fmt[i] == ".":
            prec, i = _parse_num(fmt, i + 1)
            prec = prec or 0
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
        elif argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
        else:
            out.append(_format_verb(args[argi], verb, flags, width, prec))
            argi += 1
    if argi < len(args):
        extra = ", ".join(
            "<nil>" if a is None else f"{go_type_name(a)}={format_value(a, False)}" for a in args[argi:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)
