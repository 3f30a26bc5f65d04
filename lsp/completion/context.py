"""FIM context: the prefix and suffix windows around the cursor (other files: :mod:`.repocontext`).

Budgets are in tokens, estimated from characters (no tokenizer on the client side: the model may live on
another box). The layout is *keystroke-stable*: the prefix window starts on a line number that is a
multiple of ``snap`` lines, so while the user types, consecutive prompts begin with the same text and the
model server (llamita keeps each editor's KV cache) only evaluates the few tokens that changed. Without
snapping, a window that slides by one line per new line would invalidate the whole cached prompt.

    prompt = [repository context] + prefix window + <cursor> + suffix window

Everything here is pure: text in, text out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from llamita.lsp.tokens import CHARS_PER_TOKEN, estimate_tokens

SNAP_LINES = 16

_LINE_COMMENTS = {
    "python": "#",
    "ruby": "#",
    "shellscript": "#",
    "perl": "#",
    "r": "#",
    "yaml": "#",
    "toml": "#",
    "dockerfile": "#",
    "makefile": "#",
    "elixir": "#",
    "julia": "#",
    "lua": "--",
    "sql": "--",
    "haskell": "--",
    "clojure": ";",
    "lisp": ";",
    "erlang": "%",
    "latex": "%",
    "matlab": "%",
    "vim": '"',
}


def line_comment(language_id: str) -> str:
    """The line-comment marker used to quote other files' code in the prompt."""
    return _LINE_COMMENTS.get(language_id, "//")


@dataclass(frozen=True)
class Window:
    """The text sent to the model around the cursor; ``prefix`` ends and ``suffix`` starts at the cursor."""

    prefix: str
    suffix: str
    prefix_start_line: int


def prefix_window(before: str, budget: int, snap: int = SNAP_LINES) -> tuple[str, int]:
    """The end of ``before`` that fits ``budget`` tokens, starting on a line that is a multiple of ``snap``.

    Returns the text and its first line number. The cursor line is always included; if it alone is over
    budget it is cut on the left (minified code), which is the one case where the start is not stable.
    """
    lines = before.split("\n")
    cursor_line = len(lines) - 1
    used = estimate_tokens(lines[-1])
    if used > budget:
        keep = int(budget * CHARS_PER_TOKEN)
        return (lines[-1][-keep:] if keep > 0 else ""), cursor_line
    first = cursor_line
    while first > 0:
        cost = estimate_tokens(lines[first - 1] + "\n")
        if used + cost > budget:
            break
        used += cost
        first -= 1
    if first > 0:
        first = min(math.ceil(first / snap) * snap, cursor_line)
    return "\n".join(lines[first:]), first


def suffix_window(after: str, budget: int, snap: int = SNAP_LINES) -> str:
    """The start of ``after`` that fits ``budget`` tokens, cut after a multiple of ``snap`` lines.

    The rest of the cursor line is always kept (trimmed to the budget when it alone is too long).
    """
    lines = after.split("\n")
    used = estimate_tokens(lines[0])
    if used > budget:
        return lines[0][: int(budget * CHARS_PER_TOKEN)]
    count = 1
    while count < len(lines):
        cost = estimate_tokens("\n" + lines[count])
        if used + cost > budget:
            break
        used += cost
        count += 1
    if count == len(lines):
        return after
    count = max(1, count - count % snap)
    return "\n".join(lines[:count]) + "\n"


def build_window(before: str, after: str, budget: int, suffix_share: float, snap: int = SNAP_LINES) -> Window:
    """Split ``budget`` between prefix and suffix; the suffix may use at most ``suffix_share`` of it."""
    share = min(max(suffix_share, 0.0), 0.9)
    suffix_budget = int(budget * share)
    suffix = suffix_window(after, suffix_budget, snap) if suffix_budget > 0 else ""
    prefix_budget = budget - estimate_tokens(suffix)
    prefix, start = prefix_window(before, prefix_budget, snap)
    return Window(prefix, suffix, start)


@dataclass(frozen=True)
class OtherFile:
    """Another open or recently edited document (``path`` as shown in the prompt) and its last edited line."""

    path: str
    text: str
    focus_line: int
