"""FIM context: the prefix and suffix windows around the cursor, and snippets from other open files.

Budgets are in tokens, estimated from characters (no tokenizer on the client side: the model may live on
another box). The layout is *keystroke-stable*: the prefix window starts on a line number that is a
multiple of ``snap`` lines, so while the user types, consecutive prompts begin with the same text and the
model server (llamita keeps each editor's KV cache) only evaluates the few tokens that changed. Without
snapping, a window that slides by one line per new line would invalidate the whole cached prompt.

    prompt = [snippets from other files] + prefix window + <cursor> + suffix window

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
    """The line-comment marker used to quote other files' snippets in the prompt."""
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
    """An open document other than the one being completed, and where the user last edited it."""

    path: str
    text: str
    focus_line: int


def snippet_block(others: list[OtherFile], language_id: str, budget: int, snap: int = SNAP_LINES) -> str:
    """Commented excerpts of ``others`` (most relevant first) to place before the prefix window.

    Each excerpt is the snap-aligned block of lines around the file's last edit, so it does not change
    while the user types elsewhere: the snippet block stays a stable head of the prompt.
    """
    if budget <= 0:
        return ""
    marker = line_comment(language_id)
    parts: list[str] = []
    used = 0
    for other in others:
        lines = other.text.split("\n")
        start = max(0, min(other.focus_line, len(lines) - 1) // snap * snap - snap // 2)
        header = f"{marker} Path: {other.path}\n"
        body: list[str] = []
        cost = estimate_tokens(header)
        for line in lines[start : start + 4 * snap]:
            quoted = f"{marker} {line}\n" if line.strip() else f"{marker}\n"
            line_cost = estimate_tokens(quoted)
            if used + cost + line_cost > budget:
                break
            body.append(quoted)
            cost += line_cost
        if not any(line.strip(marker + " \n") for line in body):
            continue
        parts.append(header + "".join(body))
        used += cost
        if used >= budget:
            break
    return "".join(parts)
