"""Repository context for a FIM prompt: imported definitions, then similar snippets, in a token budget.

    prompt = [repository context] + prefix window + <cursor> + suffix window

1. **Definitions** of the names the file imports (:mod:`.imports`, :mod:`.definitions`), names used in
   the code before the cursor first (the latest use first), then the other imported names. They may take
   ``definition_share`` of the budget.
2. **Snippets** of other open and recently edited files (:mod:`.snippets`), best Jaccard score first,
   fill what the definitions left; a snippet overlapping a chosen definition is skipped.

The budget decides *what* goes in; the output order is fixed: files sorted by path, pieces of one file
by line. Scores never order the text, so while the user types on a line the context is byte-identical
from one keystroke to the next (both rankings read only complete lines before the cursor line), and the
model server reuses the KV cache of the whole head of the prompt.

Two renderings: comment headers (``# Path: pkg/util.py`` and the code quoted with the language's line
comment, for any FIM or chat prompt), and :func:`files` for the repo-level format of :mod:`.repo`.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from llamita.lsp.tokens import estimate_tokens

from . import definitions, imports, snippets
from .context import OtherFile, line_comment

DEFINITION_QUERY_LINES = 60
IMPORT_HEAD_SLACK = 12
_LANGUAGES = {
    ".py": "python",
    ".pyi": "python",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "typescriptreact",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascriptreact",
}
_IMPORT_LINE = re.compile(r"^\s*(import\b|from\b|export\b.*\bfrom\b)")


@dataclass(frozen=True)
class Piece:
    """Lines ``start``..``end`` (exclusive) of the file at ``path`` (relative, ``/``-separated)."""

    path: str
    start: int
    end: int
    text: str
    kind: str  # "definition" or "snippet"


@dataclass(frozen=True)
class RepoContext:
    """The chosen pieces in output order, and the workspace's name for the repo-level format."""

    pieces: tuple[Piece, ...] = ()
    repo: str = ""

    def __bool__(self) -> bool:
        return bool(self.pieces)


def language_of(path: str) -> str:
    return _LANGUAGES.get(os.path.splitext(path)[1].lower(), "")


def repo_name(root: str) -> str:
    """The workspace folder's name, the repository's name in the repo-level format ("" without one)."""
    return os.path.basename(root.rstrip("/\\")) if root else ""


def display_path(path: str | Path, root: str) -> str:
    """``path`` relative to ``root`` with ``/`` separators (the absolute path when outside it)."""
    text = str(path)
    if root:
        relative = os.path.relpath(text, root)
        if not relative.startswith(".."):
            text = relative
    return text.replace(os.sep, "/")


def piece_cost(piece: Piece, marker: str = "#") -> int:
    """Tokens of ``piece`` rendered with a comment header (an upper bound for the repo format too)."""
    quoted = sum(len(line) + len(marker) + 2 for line in piece.text.split("\n"))
    return estimate_tokens(f"{marker} Path: {piece.path}\n") + estimate_tokens("x" * quoted)


def _overlaps(piece: Piece, chosen: Sequence[Piece]) -> bool:
    return any(p.path == piece.path and piece.start < p.end and p.start < piece.end for p in chosen)


def select(
    defs: Sequence[Piece],
    snips: Sequence[Piece],
    budget: int,
    definition_share: float,
    cost: Callable[[Piece], int] = piece_cost,
) -> tuple[Piece, ...]:
    """Definitions (in priority order) within ``definition_share`` of ``budget``, then snippets in the
    rest; returned sorted by path and line, the stable output order."""
    if budget <= 0:
        return ()
    chosen: list[Piece] = []
    used = 0
    limit = int(budget * min(max(definition_share, 0.0), 1.0))
    for piece in defs:
        price = cost(piece)
        if used + price <= limit and not _overlaps(piece, chosen):
            chosen.append(piece)
            used += price
    for piece in snips:
        price = cost(piece)
        if used + price <= budget and not _overlaps(piece, chosen):
            chosen.append(piece)
            used += price
    return tuple(sorted(chosen, key=lambda p: (p.path, p.start, p.end)))


def files(context: RepoContext, gap: str = "...") -> list[tuple[str, str]]:
    """(path, content) per file in output order; separate pieces of one file are joined by a ``gap`` line
    (``# ...`` in the language's comment syntax for the repo-level format)."""
    out: list[tuple[str, str]] = []
    for piece in context.pieces:
        if out and out[-1][0] == piece.path:
            out[-1] = (piece.path, f"{out[-1][1]}\n{gap}\n{piece.text}")
        else:
            out.append((piece.path, piece.text))
    return out


def render_comments(context: RepoContext, language_id: str) -> str:
    """The context as line comments: a ``Path:`` header per file, then its code, each line quoted."""
    marker = line_comment(language_id)
    parts: list[str] = []
    for path, content in files(context):
        parts.append(f"{marker} Path: {path}\n")
        parts += [f"{marker} {line}\n" if line.strip() else f"{marker}\n" for line in content.split("\n")]
    return "".join(parts)


def import_head(before: str) -> str:
    """The complete lines before the cursor line up to a little past the last import line.

    Imports are parsed from this head only, so typing below them reuses the cached parse.
    """
    lines = before.split("\n")[:-1]
    last = max((i for i, line in enumerate(lines) if _IMPORT_LINE.match(line)), default=-1)
    return "\n".join(lines[: last + 1 + IMPORT_HEAD_SLACK]) if last >= 0 else ""


@functools.lru_cache(maxsize=32)
def _imports(head: str, language_id: str) -> tuple[imports.Import, ...]:
    return tuple(imports.parse_imports(head, language_id))


def definition_pieces(
    before: str, path: str, root: str, language_id: str, read: Callable[[Path], str | None]
) -> list[Piece]:
    """The definitions of imported names, those used near the cursor first (latest use first)."""
    if not path or not imports.supported(language_id):
        return []
    found = list(_imports(import_head(before), language_id))
    if not found:
        return []
    targets = imports.resolve(found, path, root, language_id)
    query = snippets.query_text(before, DEFINITION_QUERY_LINES)
    used: list[tuple[int, Piece]] = []
    unused: list[Piece] = []
    for target in targets:
        text = read(target.path)
        language = language_of(str(target.path))
        if text is None or not language:
            continue
        shown = display_path(target.path, root)
        wanted = imports.used_names(target, query)
        for definition in definitions.find(text, language, wanted):
            rank = _latest_use(query, definition.name, target)
            used.append((rank, _piece(shown, definition)))
        direct = [name for _, name in target.names if name not in wanted]
        unused += [_piece(shown, d) for d in definitions.find(text, language, direct)]
    used.sort(key=lambda item: -item[0])
    return _unique([p for _, p in used] + unused)


def _latest_use(query: str, name: str, target: imports.Target) -> int:
    locals_ = [local for local, remote in target.names if remote == name]
    needles = [*locals_, *([f"{target.alias}.{name}"] if target.alias else [])]
    return max((query.rfind(n) for n in needles), default=-1)


def _piece(path: str, definition: definitions.Definition) -> Piece:
    return Piece(path, definition.start_line, definition.end_line, definition.text, "definition")


def _unique(pieces: list[Piece]) -> list[Piece]:
    seen: set[tuple[str, int]] = set()
    out: list[Piece] = []
    for piece in pieces:
        if (piece.path, piece.start) not in seen:
            seen.add((piece.path, piece.start))
            out.append(piece)
    return out


def snippet_pieces(before: str, others: Sequence[OtherFile]) -> list[Piece]:
    """Windows of ``others`` ranked by identifier overlap with the lines before the cursor line."""
    return list(_ranked(snippets.query_text(before), tuple((o.path, o.text) for o in others)))


@functools.lru_cache(maxsize=8)
def _ranked(query: str, files: tuple[tuple[str, str], ...]) -> tuple[Piece, ...]:
    """Memoized: while the user types on one line, query and files are the same objects every time."""
    ranked = snippets.rank(query, files)
    return tuple(Piece(s.chunk.path, s.chunk.start, s.chunk.end, s.chunk.text, "snippet") for s in ranked)


def gather(
    *,
    before: str,
    path: str,
    root: str,
    language_id: str,
    others: Sequence[OtherFile],
    budget: int,
    definition_share: float,
    read: Callable[[Path], str | None] | None = None,
) -> RepoContext:
    """The repository context for a cursor after ``before`` in the file at ``path`` (absolute)."""
    if budget <= 0:
        return RepoContext(repo=repo_name(root))
    reader = read or imports.reader({})
    defs = definition_pieces(before, path, root, language_id, reader)
    snips = snippet_pieces(before, others)
    marker = line_comment(language_id)
    chosen = select(defs, snips, budget, definition_share, lambda p: piece_cost(p, marker))
    return RepoContext(chosen, repo_name(root))
