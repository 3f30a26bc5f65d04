"""Post-processing of raw model output into the suggestion an editor shows.

Small models loop, run past the end of the block, repeat the code after the cursor and close brackets the
editor already auto-closed. Each fix is one small pure function ``(text, ctx) -> text`` (an empty string
drops the suggestion) so each can be golden-tested on its own; :func:`postprocess` runs them in order.
The rules follow tabby-agent's post-processing pipeline (repetition, indentation scope, duplicated
closing line, duplicated suffix, trim, minimum length) plus the single-line cut decided up front.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .syntax import Mode

MIN_CHARS = 4
_CLOSING_LINE = re.compile(r"^\s*([)\]}]+[;,]?|end)\s*$")
_LINE_END_REPEAT = (re.compile(r"(.{3,}?)\1{5,}$"), re.compile(r"(.{10,}?)\1{3,}$"))
_OPENERS = ("{", "(", "[", ":")


@dataclass(frozen=True)
class FilterContext:
    """What the filters know about the cursor: the text around it and the decided completion shape."""

    prefix: str
    suffix: str
    mode: Mode

    @property
    def line_before(self) -> str:
        return self.prefix.rsplit("\n", 1)[-1]

    @property
    def rest_of_line(self) -> str:
        return self.suffix.split("\n", 1)[0]

    @property
    def lines_after(self) -> list[str]:
        """The document lines after the cursor line."""
        return self.suffix.split("\n")[1:]


@dataclass(frozen=True)
class Suggestion:
    """Text to insert at the cursor, replacing ``replace`` characters after it (auto-closed brackets)."""

    text: str
    replace: int = 0


def _indent(line: str) -> int:
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())


def _normalize(text: str) -> str:
    return " ".join(text.split())


def cut_single_line(text: str, ctx: FilterContext) -> str:
    """Single-line mode keeps the first line only."""
    return text.split("\n", 1)[0] if ctx.mode is Mode.SINGLE else text


def remove_repetition(text: str, ctx: FilterContext) -> str:
    """Cut where the model starts looping.

    Three shapes: a last line that ends in a repeated pattern (``aaaaaa``, ``foo(foo(foo(``), a run of
    three or more identical non-blank lines (closing-bracket lines excepted: ``}`` ``}`` is normal), and a
    block (lines between blank lines) identical to the one before it.
    """
    lines = text.split("\n")
    for i in range(2, len(lines)):
        line = lines[i].strip()
        if line and not _CLOSING_LINE.match(line) and line == lines[i - 1].strip() == lines[i - 2].strip():
            lines = lines[: i - 1]
            break
    previous: list[str] = []
    current: list[str] = []
    start = 0
    for i, line in enumerate([*lines, ""]):
        if line.strip():
            if not current:
                start = i
            current.append(line.strip())
            continue
        if current and current == previous:
            lines = lines[:start]
            break
        if current:
            previous, current = current, []
    while lines and any(p.search(lines[-1]) for p in _LINE_END_REPEAT):
        lines.pop()
    return "\n".join(lines).rstrip()


def limit_scope(text: str, ctx: FilterContext) -> str:
    """Multi-line suggestions stay inside the cursor's block, judged by indentation.

    A line indented less than the cursor line ends the suggestion. When the text before the cursor opens
    a block (``def f():|``, ``{|``) the suggestion is that block's body: it also ends at the first line
    back at the opener's indentation, keeping it only if it is a closing line such as ``}``.
    """
    if ctx.mode is not Mode.MULTI or "\n" not in text:
        return text
    before = ctx.line_before
    lines = text.split("\n")
    reference = _indent(before + lines[0]) if (before + lines[0]).strip() else _indent(before)
    opens_block = before.rstrip().endswith(_OPENERS) and not lines[0].strip()
    kept = [lines[0]]
    for line in lines[1:]:
        if not line.strip():
            kept.append(line)
            continue
        indent = _indent(line)
        if indent < reference:
            break
        if opens_block and indent == reference:
            if _CLOSING_LINE.match(line):
                kept.append(line)
            break
        kept.append(line)
    return "\n".join(kept).rstrip()


def replace_length(text: str, ctx: FilterContext) -> int:
    """How many characters after the cursor the suggestion replaces.

    When the rest of the line is only auto-closed characters (``)``, ``"]``, ``}``...) and the suggestion
    already ends with them, the item's range covers them, so accepting gives ``f(a, b)``, not ``f(a, b))``.
    """
    rest = ctx.rest_of_line
    closers = rest.strip()
    if closers and set(closers) <= set(")]}\"'`;,:") and text.rstrip().endswith(closers):
        return len(rest)
    return 0


def remove_duplicate_closing_line(text: str, ctx: FilterContext) -> str:
    """Drop a final closing line (``}``, ``)``...) when the document's next non-blank line is the same."""
    lines = text.rstrip().split("\n")
    if len(lines) < 2 or not _CLOSING_LINE.match(lines[-1]):
        return text
    following = next((line.strip() for line in ctx.lines_after if line.strip()), "")
    if following and following.startswith(lines[-1].strip()):
        return "\n".join(lines[:-1]).rstrip()
    return text


def drop_duplicate_of_suffix(text: str, ctx: FilterContext) -> str:
    """Drop a suggestion that only repeats what already follows the cursor."""
    wanted = [line for line in text.split("\n") if line.strip()][:3]
    if not wanted:
        return ""
    suffix_lines = [line for line in ctx.suffix.split("\n") if line.strip()][: len(wanted)]
    if _normalize("\n".join(wanted)) == _normalize("\n".join(suffix_lines)):
        return ""
    rest = _normalize(ctx.rest_of_line)
    if rest and "\n" not in text and rest.startswith(_normalize(text)):
        return ""
    return text


def trim_space(text: str, ctx: FilterContext) -> str:
    """No trailing whitespace; no leading space doubled with a space already before the cursor."""
    text = text.rstrip()
    if ctx.line_before.endswith((" ", "\t")) and ctx.line_before.strip():
        first, sep, rest = text.partition("\n")
        text = first.lstrip(" \t") + sep + rest
    return text


def drop_short(text: str, ctx: FilterContext) -> str:
    """Suggestions with fewer than four non-space characters are noise (``)``, ``:``, a lone name)."""
    return text if len("".join(text.split())) >= MIN_CHARS else ""


PIPELINE: tuple[Callable[[str, FilterContext], str], ...] = (
    cut_single_line,
    remove_repetition,
    limit_scope,
    remove_duplicate_closing_line,
    drop_duplicate_of_suffix,
    trim_space,
    drop_short,
)


def postprocess(raw: str, ctx: FilterContext) -> Suggestion | None:
    """Run the pipeline; None when nothing worth showing is left."""
    text = raw
    for step in PIPELINE:
        text = step(text, ctx)
        if not text:
            return None
    return Suggestion(text, replace_length(text, ctx))
