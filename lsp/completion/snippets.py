"""Snippets from other files, ranked by how much their identifiers overlap the code before the cursor.

The files (other open documents, recently edited or closed ones) are cut into overlapping windows of
``WINDOW`` lines every ``STEP`` lines; each window is scored by the Jaccard similarity of its identifier
set with the query's (Copilot's "neighboring tabs" and Continue do the same). Cheap, language-agnostic
and good at finding the code the user is mirroring: a sibling handler, the test of the function being
written, the call site of the function being changed.

The query is the complete lines before the cursor line (:func:`query_text`), not the line being typed,
so the choice of snippets does not change while the user types on one line: the prompt head stays
byte-identical and the model server reuses its KV cache for it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

WINDOW = 12
STEP = 6
QUERY_LINES = 24
MAX_FILE_CHARS = 200_000
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Words in nearly every chunk of code say nothing about relevance.
_STOP_WORDS = (
    "a an and as async await break case catch class const continue def default del do elif else except "
    "export false finally fn for from func function if import in is let new nil none not null of or "
    "pass private public raise return self static this throw true try type var void while with yield "
    "int str bool string number"
)
_STOP = frozenset(_STOP_WORDS.split(" "))


@dataclass(frozen=True)
class Chunk:
    """Lines ``start``..``end`` (exclusive) of ``path`` and their identifiers."""

    path: str
    start: int
    end: int
    text: str
    tokens: frozenset[str]


@dataclass(frozen=True)
class Scored:
    score: float
    chunk: Chunk


def identifiers(text: str) -> frozenset[str]:
    """The identifiers of ``text``, lower-cased, without one-letter names and keywords."""
    return frozenset(w for w in (m.lower() for m in _IDENT.findall(text)) if len(w) > 1 and w not in _STOP)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    both = len(a & b)
    return both / (len(a) + len(b) - both)


@functools.lru_cache(maxsize=128)
def chunks(path: str, text: str, window: int = WINDOW, step: int = STEP) -> tuple[Chunk, ...]:
    """Overlapping windows of ``text``'s lines (cached: other files rarely change between keystrokes)."""
    lines = text[:MAX_FILE_CHARS].split("\n")
    out: list[Chunk] = []
    start = 0
    while start < len(lines):
        end = min(start + window, len(lines))
        body = "\n".join(lines[start:end]).rstrip("\n")
        if body.strip():
            out.append(Chunk(path, start, end, body, identifiers(body)))
        if end == len(lines):
            break
        start += step
    return tuple(out)


def query_text(before: str, lines: int = QUERY_LINES) -> str:
    """The last ``lines`` complete lines before the cursor line (the line being typed is left out)."""
    head = before.rsplit("\n", 1)[0] if "\n" in before else ""
    return "\n".join(head.split("\n")[-lines:]) if head else ""


def rank(query: str, files: Iterable[tuple[str, str]], min_score: float = 0.0) -> list[Scored]:
    """The windows of ``files`` (path, text) best first, overlapping windows of one file removed.

    Ties are broken by path and line, so the same inputs always give the same list.
    """
    wanted = identifiers(query)
    if not wanted:
        return []
    scored = [
        Scored(score, chunk)
        for path, text in files
        for chunk in chunks(path, text)
        if (score := jaccard(wanted, chunk.tokens)) > min_score
    ]
    scored.sort(key=lambda s: (-s.score, s.chunk.path, s.chunk.start))
    taken: dict[str, list[tuple[int, int]]] = {}
    out: list[Scored] = []
    for item in scored:
        spans = taken.setdefault(item.chunk.path, [])
        if any(item.chunk.start < end and start < item.chunk.end for start, end in spans):
            continue
        spans.append((item.chunk.start, item.chunk.end))
        out.append(item)
    return out
