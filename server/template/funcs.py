"""The template function map: Go's builtins plus the functions Ollama registers.

Models see what these print, so they follow Go: ``print``/``printf``/``println`` are
:mod:`llamita.server.gocompat.fmt`'s ``fmt.Sprint`` family and ``json`` is
:mod:`llamita.server.gocompat.json`'s ``json.Marshal`` (the encoder blobs are named with).
"""

from __future__ import annotations

import datetime as _dt
import urllib.parse
from collections.abc import Mapping
from typing import Any

from llamita.server.gocompat.fmt import format_value, go_type_name, sprint, sprintf, sprintln
from llamita.server.gocompat.json import marshal

from .values import FuncError, GoFunc, is_true

# --------------------------------------------------------------------------- fmt


def go_printf(fmt: Any, *args: Any) -> str:
    """``printf``: ``fmt.Sprintf``, whose format must be a string."""
    if not isinstance(fmt, str):
        raise FuncError(f"wrong type for value; expected string; got {go_type_name(fmt)}")
    return sprintf(fmt, *args)


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
        return marshal(v)
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


BUILTINS: dict[str, GoFunc] = {
    # and/or are evaluated lazily by the executor; these eager versions serve ``call``-style use
    "and": GoFunc(lambda *a: next((x for x in a if not is_true(x)), a[-1]), 1, None, True),
    "or": GoFunc(lambda *a: next((x for x in a if is_true(x)), a[-1]), 1, None, True),
    "not": GoFunc(lambda x: not is_true(x), 1, 1),
    "len": GoFunc(go_len, 1, 1),
    "index": GoFunc(go_index, 1, None),
    "slice": GoFunc(go_slice, 1, None),
    "print": GoFunc(sprint, 0, None),
    "printf": GoFunc(go_printf, 1, None),
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
