"""Top-level definitions of a file, found with tree-sitter and shortened for a prompt.

What a completion needs from an imported function is how to call it: its signature, its docstring and
the first few lines of its body. A class is shown as a skeleton (its header, docstring, attributes and
method signatures with ``...`` bodies) when it is longer than ``max_lines``, so a big class still costs a
few dozen tokens. Python and JS/TS (functions, classes, ``const``/``let``/``var``, TS interfaces, type
aliases and enums; ``export`` and ``export default`` included) are supported.

Results are cached per file text, so the per-keystroke cost is a dictionary lookup.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from .syntax import parser_for

MAX_LINES = 12
MAX_SKELETON_LINES = 30

_PY_DEFS = ("function_definition", "class_definition")
_JS_FUNCTIONS = ("function_declaration", "generator_function_declaration")
_JS_TYPES = ("interface_declaration", "type_alias_declaration", "enum_declaration")
_JS_VARIABLES = ("lexical_declaration", "variable_declaration")
_JS_CLASSES = ("class_declaration", "abstract_class_declaration")


@dataclass(frozen=True)
class Definition:
    """A top-level name, its lines in its file (``end_line`` exclusive), and its shortened source."""

    name: str
    start_line: int
    end_line: int
    text: str


def _str(source: bytes, start: int, end: int) -> str:
    return source[start:end].decode("utf-8", "replace")


def _line_start(source: bytes, byte: int) -> int:
    return source.rfind(b"\n", 0, byte) + 1


def _full_lines(source: bytes, node: Any) -> str:
    """The node's source from the start of its first line (keeps the indentation)."""
    return _str(source, _line_start(source, node.start_byte), node.end_byte)


def _head(text: str, max_lines: int, ellipsis: str) -> str:
    lines = text.split("\n")
    if len(lines) <= max_lines:
        return text
    kept = lines[:max_lines]
    indent = next((ln[: len(ln) - len(ln.lstrip())] for ln in reversed(kept) if ln.strip()), "")
    return "\n".join([*kept, indent + ellipsis])


def _signature(source: bytes, node: Any, body: Any, stub: str) -> str:
    """``def f(a, b) -> int: ...``: the node's text up to its body, with ``stub`` for the body."""
    head = _str(source, _line_start(source, node.start_byte), body.start_byte).rstrip()
    return f"{head} {stub}"


def _python_class(source: bytes, node: Any, outer: Any, max_lines: int) -> str:
    whole = _full_lines(source, outer)
    if whole.count("\n") < max_lines:
        return whole
    body = node.child_by_field_name("body")
    if body is None:
        return _head(whole, max_lines, "...")
    out = [_str(source, _line_start(source, outer.start_byte), body.start_byte).rstrip()]
    for child in body.children:
        inner = child.child_by_field_name("definition") if child.type == "decorated_definition" else child
        if inner is not None and inner.type == "function_definition":
            fn_body = inner.child_by_field_name("body")
            if fn_body is not None:
                out.append(_signature(source, child, fn_body, "..."))
                continue
        if inner is not None and inner.type == "class_definition":
            out.append(_str(source, _line_start(source, child.start_byte), child.start_byte) + "class ...")
            continue
        first = _full_lines(source, child).split("\n")
        out.append(first[0] + (" ..." if len(first) > 1 else ""))
    return "\n".join(out[:MAX_SKELETON_LINES])


def _python_definitions(source: bytes, root: Any, max_lines: int) -> list[Definition]:
    out: list[Definition] = []
    for node in root.children:
        outer, inner = node, node
        if node.type == "decorated_definition":
            inner = node.child_by_field_name("definition") or node
        if node.type == "expression_statement" and node.named_child_count == 1:
            inner = node.named_children[0]
        start, end = outer.start_point.row, outer.end_point.row + 1
        if inner.type in _PY_DEFS:
            name_node = inner.child_by_field_name("name")
            if name_node is None:
                continue
            if inner.type == "class_definition":
                text = _python_class(source, inner, outer, max_lines)
            else:
                text = _head(_full_lines(source, outer), max_lines, "...")
            out.append(Definition(_str(source, name_node.start_byte, name_node.end_byte), start, end, text))
        elif inner.type == "assignment":
            left = inner.child_by_field_name("left")
            if left is not None and left.type == "identifier":
                text = _head(_full_lines(source, outer), max(3, max_lines // 3), "...")
                out.append(Definition(_str(source, left.start_byte, left.end_byte), start, end, text))
    return out


def _script_class(source: bytes, node: Any, outer: Any, max_lines: int) -> str:
    whole = _full_lines(source, outer)
    body = node.child_by_field_name("body")
    if whole.count("\n") < max_lines or body is None:
        return _head(whole, max_lines, "// ...")
    out = [_str(source, _line_start(source, outer.start_byte), body.start_byte + 1).rstrip()]
    for member in body.named_children:
        fn_body = member.child_by_field_name("body")
        if member.type == "method_definition" and fn_body is not None:
            out.append(_signature(source, member, fn_body, "{ ... }"))
        elif "comment" not in member.type:
            end = source.find(b"\n", member.start_byte)
            out.append(_str(source, _line_start(source, member.start_byte), end if end >= 0 else len(source)))
    out.append("}")
    return "\n".join(out[:MAX_SKELETON_LINES])


def _script_names(node: Any, source: bytes) -> list[str]:
    if node.type in _JS_VARIABLES:
        names = (
            d.child_by_field_name("name") for d in node.named_children if d.type == "variable_declarator"
        )
        return [
            _str(source, n.start_byte, n.end_byte) for n in names if n is not None and n.type == "identifier"
        ]
    name = node.child_by_field_name("name")
    return [_str(source, name.start_byte, name.end_byte)] if name is not None else []


def _script_definitions(source: bytes, root: Any, max_lines: int) -> list[Definition]:
    out: list[Definition] = []
    for node in root.children:
        outer, inner, default = node, node, False
        if node.type == "export_statement":
            inner = node.child_by_field_name("declaration") or next(
                (c for c in node.named_children if c.type in (*_JS_FUNCTIONS, *_JS_CLASSES)), None
            )
            default = any(c.type == "default" for c in node.children)
            if inner is None:
                continue
        if inner.type in _JS_CLASSES:
            text = _script_class(source, inner, outer, max_lines)
        elif inner.type in (*_JS_FUNCTIONS, *_JS_TYPES, *_JS_VARIABLES):
            text = _head(_full_lines(source, outer), max_lines, "// ...")
        else:
            continue
        start, end = outer.start_point.row, outer.end_point.row + 1
        names = _script_names(inner, source) + (["default"] if default else [])
        out += [Definition(name, start, end, text) for name in names]
    return out


@functools.lru_cache(maxsize=32)
def top_level(text: str, language_id: str, max_lines: int = MAX_LINES) -> tuple[Definition, ...]:
    """Every top-level definition of ``text``, in file order (empty for unsupported languages)."""
    parser = parser_for(language_id)
    if parser is None:
        return ()
    source = text.encode("utf-8")
    root = parser.parse(source).root_node
    if language_id == "python":
        return tuple(_python_definitions(source, root, max_lines))
    if language_id in ("javascript", "javascriptreact", "typescript", "typescriptreact"):
        return tuple(_script_definitions(source, root, max_lines))
    return ()


def find(text: str, language_id: str, names: list[str], max_lines: int = MAX_LINES) -> list[Definition]:
    """The definitions of ``names`` in ``text``, in the order of ``names`` (missing ones are skipped)."""
    by_name: dict[str, Definition] = {}
    for definition in top_level(text, language_id, max_lines):
        by_name.setdefault(definition.name, definition)
    return [by_name[name] for name in dict.fromkeys(names) if name in by_name]
