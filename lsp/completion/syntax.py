"""Decide, before asking the model, what shape of completion the cursor position wants.

- ``NONE``: the cursor is in the middle of a word (``pri|nt``): a suggestion would have to split a token,
  so no request is made at all (llm-ls's rule; it also saves most requests while a user edits a name).
- ``SINGLE``: mid-line, inside a one-line bracket pair, a string or a comment: the completion is cut at
  its first newline (and ``"\\n"`` is sent as a stop string, so the model stops early).
- ``MULTI``: at the end of a line, on an empty line, or inside an empty block: a block of code may follow.

The plain-text rules below work for any language. For Python, JS/TS, Go, Rust, Java and C/C++, a
tree-sitter parse of the context window refines them: comments and one-line strings are single-line even
at the end of a line, multi-line strings (docstrings) are multi-line, and a bracket pair spanning lines is
treated like a block. Parsing only the window (a few KB) keeps this well under a millisecond or two.
"""

from __future__ import annotations

import enum
import functools
from typing import Any, cast

from tree_sitter_language_pack import SupportedLanguage, get_parser

_CLOSERS = set(")]}\"'`;,:")
_GRAMMARS = {
    "python": "python",
    "javascript": "javascript",
    "javascriptreact": "javascript",
    "typescript": "typescript",
    "typescriptreact": "tsx",
    "go": "go",
    "rust": "rust",
    "java": "java",
    "c": "c",
    "cpp": "cpp",
}


class Mode(enum.StrEnum):
    NONE = "none"
    SINGLE = "single"
    MULTI = "multi"


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def plain_decision(line_before: str, rest_of_line: str) -> Mode:
    """The language-independent rules, from the text around the cursor on its line."""
    if rest_of_line[:1] and _is_word(rest_of_line[0]):
        return Mode.NONE
    rest = rest_of_line.strip()
    if not rest:
        return Mode.MULTI
    if set(rest) <= _CLOSERS:
        return Mode.MULTI if rest[0] == "}" else Mode.SINGLE
    return Mode.SINGLE


@functools.cache
def _parser(grammar: str) -> Any:
    return get_parser(cast(SupportedLanguage, grammar))


def supported(language_id: str) -> bool:
    return language_id in _GRAMMARS


def parser_for(language_id: str) -> Any | None:
    """The (cached) tree-sitter parser for an LSP language id, or None for languages without one."""
    grammar = _GRAMMARS.get(language_id)
    return _parser(grammar) if grammar is not None else None


def decide(prefix: str, suffix: str, language_id: str) -> Mode:
    """The completion shape for a cursor between ``prefix`` and ``suffix`` (the FIM window)."""
    line_before = prefix.rsplit("\n", 1)[-1]
    rest_of_line = suffix.split("\n", 1)[0]
    plain = plain_decision(line_before, rest_of_line)
    grammar = _GRAMMARS.get(language_id)
    if plain is Mode.NONE or grammar is None:
        return plain
    source = (prefix + suffix).encode("utf-8")
    cursor = len(prefix.encode("utf-8"))
    tree = _parser(grammar).parse(source)
    return _tree_decision(tree.root_node, source, cursor, plain)


def _tree_decision(root: Any, source: bytes, cursor: int, plain: Mode) -> Mode:
    if cursor > 0:
        node = root.descendant_for_byte_range(cursor - 1, cursor)
        while node is not None:
            if "comment" in node.type:
                block_closed = source[node.end_byte - 2 : node.end_byte] == b"*/"
                if node.end_byte > cursor or not block_closed:
                    return Mode.SINGLE
                break
            node = node.parent
    node = root.descendant_for_byte_range(cursor, cursor)
    while node is not None and node.parent is not None:
        inside = node.start_byte < cursor < node.end_byte
        multi_row = node.start_point.row != node.end_point.row
        kind = node.type
        if inside and "string" in kind and "interpolation" not in kind and "substitution" not in kind:
            return Mode.MULTI if multi_row else Mode.SINGLE
        if inside:
            first, last = (
                source[node.start_byte : node.start_byte + 1],
                source[node.end_byte - 1 : node.end_byte],
            )
            if (first, last) in ((b"(", b")"), (b"[", b"]")):
                return plain if multi_row else Mode.SINGLE
            if (first, last) == (b"{", b"}"):
                interior = source[node.start_byte + 1 : node.end_byte - 1]
                return Mode.MULTI if not interior.strip() else plain
        node = node.parent
    return plain
