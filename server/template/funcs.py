"""The template function map: Go's builtins plus the functions Ollama registers.

Go's ``fmt`` verbs and ``encoding/json`` are reproduced here because models see their output:
``printf``/``print`` follow ``fmt.Sprintf``/``fmt.Sprint``, and ``json`` is ``json.Marshal`` with
HTML escaping, sorted map keys, struct fields in declaration order (dataclass fields, with
``metadata["json"]`` tags such as ``"name,omitempty"``). ``go_nil = True`` on a list/dict marks a
nil slice/map (JSON ``null``); ``go_ordered = True`` on a dict keeps insertion order (Ollama's
ordered maps).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import json as _json
import math
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from .exec import FuncError, format_float, format_value, go_type_name, is_stringer, is_true, sorted_items
from .lexer import go_quote

# --------------------------------------------------------------------------- fmt.Sprint family


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
    return " ".join(format_value(a, False) for a in args) + "\n"


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
        return "'" + go_quote(chr(v))[1:-1].replace("'", "\\'").replace('\\"', '"') + "'"
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
        return go_quote(s if prec is None else s[:prec])
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
    if not isinstance(fmt, str):
        raise FuncError(f"wrong type for value; expected string; got {go_type_name(fmt)}")
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


# --------------------------------------------------------------------------- encoding/json


def _json_string(s: str) -> str:
    text = _json.dumps(s, ensure_ascii=False)
    for raw, esc in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, esc)
    return text


def _json_float(f: float) -> str:
    if math.isnan(f) or math.isinf(f):
        raise ValueError(f"json: unsupported value: {format_float(f)}")
    a = abs(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        text = format_float(f, "e")
        if text[-4:-1] == "e-0":  # Go trims e-07 to e-7
            text = text[:-2] + text[-1]
        return text
    return format_float(f, "f")


def _json_omit(value: Any, field: dataclasses.Field[Any]) -> bool:
    if value is None:
        return True
    if field.metadata.get("json_nilable"):  # interface/pointer field: only nil counts as empty
        return False
    if isinstance(value, (bool, int, float, str, bytes, list, tuple, dict, Mapping)):
        return not value
    return False


def go_json(v: Any) -> str:
    """Go's ``json.Marshal``: compact, HTML-escaped, maps sorted, structs in field order."""
    if v is None or getattr(v, "go_nil", False):
        return "null"
    hook = getattr(type(v), "__go_json__", None)
    if hook is not None:
        return hook(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        return _json_float(float(v))
    if isinstance(v, str):
        return _json_string(str(v))
    if isinstance(v, (bytes, bytearray)):
        return '"' + base64.b64encode(bytes(v)).decode() + '"'
    if isinstance(v, Mapping):
        items = list(v.items()) if getattr(v, "go_ordered", False) else sorted_items(v)
        return "{" + ",".join(f"{_json_string(str(k))}:{go_json(x)}" for k, x in items) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(go_json(x) for x in v) + "]"
    if dataclasses.is_dataclass(v):
        parts = []
        for field in dataclasses.fields(v):
            name, _, opts = str(field.metadata.get("json", field.name)).partition(",")
            value = getattr(v, field.name)
            if name == "-" or ("omitempty" in opts.split(",") and _json_omit(value, field)):
                continue
            parts.append(f"{_json_string(name or field.name)}:{go_json(value)}")
        return "{" + ",".join(parts) + "}"
    public = {k: x for k, x in vars(v).items() if not k.startswith("_")} if hasattr(v, "__dict__") else None
    if public is not None:
        return "{" + ",".join(f"{_json_string(k)}:{go_json(x)}" for k, x in public.items()) + "}"
    return _json_string(str(v))


# --------------------------------------------------------------------------- builtins


def _basic_kind(v: Any) -> str | None:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, complex):
        return "complex"
    if isinstance(v, str):
        return "string"
    return None


def go_eq(a: Any, *others: Any) -> bool:
    """``eq a b c`` is ``a == b || a == c``; basic kinds must match unless one side is nil."""
    if not others:
        raise FuncError("missing argument for comparison")
    k1 = _basic_kind(a)
    for b in others:
        k2 = _basic_kind(b)
        if k1 != k2:
            if a is not None and b is not None:
                raise FuncError("incompatible types for comparison")
            truth = False
        elif k1 is not None:
            truth = a == b
        elif a is None or b is None:
            truth = a is None and b is None
        elif isinstance(b, (list, dict, bytearray, set)) or isinstance(a, (list, dict, bytearray, set)):
            raise FuncError(f"non-comparable type {format_value(b, False)}: {go_type_name(b)}")
        else:
            truth = type(a) is type(b) and a == b
        if truth:
            return True
    return False


def go_lt(a: Any, b: Any) -> bool:
    k1, k2 = _basic_kind(a), _basic_kind(b)
    if k1 is None or k2 is None:
        raise FuncError("invalid type for comparison")
    if k1 != k2:
        raise FuncError("incompatible types for comparison")
    if k1 in ("bool", "complex"):
        raise FuncError("invalid type for comparison")
    return bool(a < b)


def go_le(a: Any, b: Any) -> bool:
    return go_lt(a, b) or go_eq(a, b)


def _index_arg(index: Any, cap: int) -> int:
    if index is None:
        raise FuncError("cannot index slice/array with nil")
    if isinstance(index, bool) or not isinstance(index, int):
        raise FuncError(f"cannot index slice/array with type {go_type_name(index)}")
    if index < 0 or index > cap:
        raise FuncError(f"index out of range: {index}")
    return index


def go_index(item: Any, *indexes: Any) -> Any:
    """``index x 1 2`` is ``x[1][2]``; a missing map key yields nil (Go's zero value for ``any``)."""
    if item is None:
        raise FuncError("index of untyped nil")
    for index in indexes:
        if item is None:
            raise FuncError("index of nil pointer")
        if isinstance(item, (str, bytes, bytearray, list, tuple)):
            seq = item.encode() if isinstance(item, str) else item
            x = _index_arg(index, len(seq))
            if x >= len(seq):
                raise FuncError(f"index out of range: {x}")
            item = seq[x]
        elif isinstance(item, Mapping):
            item = item.get(index)
        else:
            raise FuncError(f"can't index item of type {go_type_name(item)}")
    return item


def go_slice(item: Any, *indexes: Any) -> Any:
    """``slice x 1 2`` is ``x[1:2]``; strings are sliced by bytes as in Go."""
    if item is None:
        raise FuncError("slice of untyped nil")
    if len(indexes) > 3:
        raise FuncError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise FuncError("cannot 3-index slice a string")
        seq: Any = item.encode()
    elif isinstance(item, (list, tuple, bytes, bytearray)):
        seq = item
    else:
        raise FuncError(f"can't slice item of type {go_type_name(item)}")
    idx = [0, len(seq), len(seq)]
    for i, index in enumerate(indexes):
        idx[i] = _index_arg(index, len(seq))
    if idx[0] > idx[1]:
        raise FuncError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and idx[1] > idx[2]:
        raise FuncError(f"invalid slice index: {idx[1]} > {idx[2]}")
    part = seq[idx[0] : idx[1]]
    return part.decode("utf-8", "replace") if isinstance(item, str) else part


def go_len(item: Any) -> int:
    if item is None:
        raise FuncError("len of nil pointer")
    if isinstance(item, str):
        return len(item.encode())
    if isinstance(item, (bool, int, float, complex)) or not hasattr(item, "__len__"):
        raise FuncError(f"len of type {go_type_name(item)}")
    return len(item)


def go_call(fn: Any, *args: Any) -> Any:
    if fn is None:
        raise FuncError("call of nil")
    if not callable(fn):
        raise FuncError(f"non-function of type {go_type_name(fn)}")
    try:
        return fn(*args)
    except Exception as exc:
        raise FuncError(str(exc)) from exc


def _eval_args(args: tuple[Any, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(*("<no value>" if a is None else a for a in args))


_HTML_ESCAPES = {'"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;", "\0": "\ufffd"}
_JS_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "<": "\\u003C",
    ">": "\\u003E",
    "&": "\\u0026",
    "=": "\\u003D",
}


def go_html(*args: Any) -> str:
    return "".join(_HTML_ESCAPES.get(c, c) for c in _eval_args(args))


def _js_char(c: str) -> str:
    if c in _JS_ESCAPES:
        return _JS_ESCAPES[c]
    if c < " ":
        return f"\\u{ord(c):04X}"
    if c >= "\x80" and not c.isprintable():
        return f"\\u{ord(c):04X}"
    return c


def go_js(*args: Any) -> str:
    return "".join(_js_char(c) for c in _eval_args(args))


def go_urlquery(*args: Any) -> str:
    return urllib.parse.quote_plus(_eval_args(args), safe="")


# --------------------------------------------------------------------------- Ollama's additions


def ollama_json(v: Any) -> str:
    """Ollama's ``json``: ``json.Marshal`` with the error ignored (so unsupported values give "")."""
    try:
        return go_json(v)
    except (ValueError, TypeError, RecursionError):
        return ""


def current_date(*_format: Any) -> str:
    """Today as YYYY-MM-DD in local time; Ollama accepts and ignores a format argument."""
    return _dt.date.today().isoformat()


def yesterday_date(*_format: Any) -> str:
    return (_dt.date.today() - _dt.timedelta(days=1)).isoformat()


_TS_TYPES = {
    "string": "string",
    "number": "number",
    "integer": "number",
    "boolean": "boolean",
    "array": "any[]",
    "object": "Record<string, any>",
    "null": "null",
}


def to_typescript_type(prop: Any) -> str:
    """Map a JSON-schema tool property (object with Type/AnyOf, or a dict) to a TypeScript type."""
    if prop is None:
        return "any"
    if isinstance(prop, Mapping):
        any_of, types = prop.get("anyOf"), prop.get("type")
    elif hasattr(prop, "Type") or hasattr(prop, "AnyOf"):
        any_of, types = getattr(prop, "AnyOf", None), getattr(prop, "Type", None)
    else:
        return "any"
    if any_of:
        return " | ".join(to_typescript_type(p) for p in any_of)
    if isinstance(types, str):
        types = [types]
    if not types:
        return "any"
    return " | ".join(_TS_TYPES.get(t, "any") for t in types)


# --------------------------------------------------------------------------- registry


class GoFunc(NamedTuple):
    fn: Callable[..., Any]
    min_args: int
    max_args: int | None  # None: variadic
    short_circuit: bool = False  # and/or: arguments are evaluated lazily by the executor


BUILTINS: dict[str, GoFunc] = {
    # and/or are evaluated lazily by the executor; these eager versions serve ``call``-style use
    "and": GoFunc(lambda *a: next((x for x in a if not is_true(x)), a[-1]), 1, None, True),
    "or": GoFunc(lambda *a: next((x for x in a if is_true(x)), a[-1]), 1, None, True),
    "not": GoFunc(lambda x: not is_true(x), 1, 1),
    "len": GoFunc(go_len, 1, 1),
    "index": GoFunc(go_index, 1, None),
    "slice": GoFunc(go_slice, 1, None),
    "print": GoFunc(sprint, 0, None),
    "printf": GoFunc(sprintf, 1, None),
    "println": GoFunc(sprintln, 0, None),
    "html": GoFunc(go_html, 0, None),
    "js": GoFunc(go_js, 0, None),
    "urlquery": GoFunc(go_urlquery, 0, None),
    "call": GoFunc(go_call, 1, None),
    "eq": GoFunc(go_eq, 1, None),
    "ne": GoFunc(lambda a, b: not go_eq(a, b), 2, 2),
    "lt": GoFunc(go_lt, 2, 2),
    "le": GoFunc(go_le, 2, 2),
    "gt": GoFunc(lambda a, b: not go_le(a, b), 2, 2),
    "ge": GoFunc(lambda a, b: not go_lt(a, b), 2, 2),
    # Ollama's template.FuncMap
    "json": GoFunc(ollama_json, 1, 1),
    "currentDate": GoFunc(current_date, 0, None),
    "yesterdayDate": GoFunc(yesterday_date, 0, None),
    "toTypeScriptType": GoFunc(to_typescript_type, 1, 1),
}
