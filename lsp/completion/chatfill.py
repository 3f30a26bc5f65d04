"""Fill-in-the-middle for models without FIM training, through the model's own chat template.

A chat or small base model (the embedded SmolLM2) has no FIM tokens and no ``insert`` capability, and a
raw StarCoder-token prompt is noise to it. Such a model can follow an instruction instead: the prompt
(``prompts/fim_chat.md``, user-overridable) shows the prefix and suffix around a ``<HOLE>`` marker and
asks for only the missing code. The request is a non-raw ``/api/generate``, so the server wraps it in the
model's chat template and the engine keeps one request path (sessions, cancellation, ``done_reason``).

Precedence (see :func:`use_chat`): native FIM (``insert``) first, then a raw family template whose name
or family matches (a FIM-trained model's own tokens beat any instruction), then this chat fill-in; the
``fimTemplate`` setting forces either (``chat``, or a family name).

A small instruction model does best on a short, focused question, so the prompt shows only a few lines
around the cursor (:func:`crop`), and asks for one line when the cursor ends a line of unfinished code
(:func:`shape`: a block only on an empty line or after a block opener, as editors' multi-line rules do).
Answers come wrapped in code fences, narrate in comments or prose, echo the code before the cursor, run
into the suffix or lose their indentation: :func:`extract` undoes that (one small rule each) before the
shared filters (``filters.postprocess``) run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from llamita.lsp import prompts

from .context import Window, line_comment
from .filters import FilterContext
from .fim import known_family, options
from .syntax import Mode

CHAT = "chat"
HOLE = "<HOLE>"
PROMPT = "fim_chat.md"
SHAPES = {
    Mode.SINGLE: "the rest of the current line only, one line.",
    Mode.MULTI: "one short block of lines (at most a few statements).",
}
# A fence closes the answer; a blank line ends a multi-line block (one block, not the whole file).
STOPS = {Mode.SINGLE: ["\n```"], Mode.MULTI: ["\n```", "\n\n\n"]}
PREFIX_LINES = 8  # complete lines shown before the cursor line
SUFFIX_LINES = 4  # lines shown after the cursor line
MIN_ECHO = 4  # non-space characters an echo must have to be cut (a lone "}" may be new code)
_FENCE = re.compile(r"^\s*```[\w+#.-]*[ \t]*\n?")
_PAIRS = {"(": ")", "[": "]", "{": "}"}
_PROSE = re.compile(r"^[A-Z][a-z]+(?: [a-z`'\"][^\s]*){3,}")  # "The code you provided ..."


def use_chat(model: str, family: str, forced: str = "") -> bool:
    """Whether a model without ``insert`` gets the chat fill-in rather than a raw family template."""
    if forced:
        return forced == CHAT
    return not known_family(model, family)


def context_section(snippets: str, language: str) -> str:
    """The repository context as its own fenced block before the code (``$context``; "" for none).

    Inside the code block, a small chat model takes the quoted files for the start of the answer and
    repeats them; set apart and labelled, they read as reference.
    """
    if not snippets:
        return ""
    return f"Code from other files of this repository, for reference:\n\n```{language}\n{snippets}```\n\n"


def crop(window: Window) -> Window:
    """The few lines around the cursor the prompt shows: a long window drowns a small model's attention."""
    before = window.prefix.split("\n")
    kept = before[-(PREFIX_LINES + 1) :]
    after = window.suffix.split("\n")[: SUFFIX_LINES + 1]
    return Window("\n".join(kept), "\n".join(after), window.prefix_start_line + len(before) - len(kept))


def _unclosed(code: str) -> bool:
    """Whether ``code`` leaves a bracket open (strings are not parsed: a rough, cheap guess)."""
    depth = 0
    for char in code:
        if char in _PAIRS:
            depth += 1
        elif char in _PAIRS.values():
            depth = max(depth - 1, 0)
    return depth > 0


def shape(window: Window, mode: Mode) -> Mode:
    """The answer's shape: a block only where one starts, the rest of the line where code is unfinished.

    The engine's MULTI (the cursor at a line end) also covers ``x = foo(|``; what a user wants there is the
    end of that line. A block is asked for on an empty line (indentation only) or after a block opener
    (``:`` or ``{`` with no bracket left open before it).
    """
    if mode is not Mode.MULTI:
        return mode
    line = window.prefix.rsplit("\n", 1)[-1].rstrip()
    if not line.strip():
        return Mode.MULTI
    if line.endswith("{") and not _unclosed(line[:-1]):
        return Mode.MULTI
    if line.endswith(":") and not _unclosed(line):
        return Mode.MULTI
    return Mode.SINGLE


def render(window: Window, mode: Mode, language: str, snippets: str = "", override_dir: str = "") -> str:
    directory = Path(override_dir).expanduser() if override_dir else None
    window = crop(window)
    return prompts.render(
        PROMPT,
        directory,
        language=language or "text",
        shape=SHAPES.get(shape(window, mode), SHAPES[Mode.MULTI]),
        context=context_section(snippets, language or "text"),
        prefix=window.prefix,
        suffix=window.suffix,
    )


def request_body(
    model: str,
    window: Window,
    mode: Mode,
    *,
    language: str = "",
    snippets: str = "",
    num_predict: int = 128,
    temperature: float = 0.2,
    stop: list[str] | None = None,
    keep_alive: str = "",
    prompts_dir: str = "",
) -> dict[str, Any]:
    """A non-raw ``/api/generate`` body: the server applies the model's chat template."""
    body: dict[str, Any] = {"model": model, "prompt": render(window, mode, language, snippets, prompts_dir)}
    mode = shape(window, mode)
    # No "\n" stop in single-line mode: the answer usually opens with a fence line; extract() cuts it.
    body["options"] = options(Mode.MULTI, num_predict, temperature, [*STOPS.get(mode, []), *(stop or [])])
    if mode is Mode.SINGLE:
        body["options"]["num_predict"] = min(num_predict, 48)
    if keep_alive:
        body["keep_alive"] = keep_alive
    return body


def unfence(text: str) -> str:
    """The code inside the first fenced block, or the text itself when it has no opening fence."""
    match = _FENCE.match(text)
    if match:
        text = text[match.end() :]
    return text.split("```", 1)[0]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _chars(lines: list[str]) -> int:
    return sum(len("".join(line.split())) for line in lines)


def drop_echoed_lines(text: str, ctx: FilterContext) -> str:
    """Drop the answer's first lines when they repeat the last complete lines before the cursor."""
    lines = text.split("\n")
    before = [line.strip() for line in ctx.prefix.split("\n")[:-1]]
    for k in range(min(len(lines), len(before)), 0, -1):
        head = [line.strip() for line in lines[:k]]
        if head == before[-k:] and _chars(head) >= MIN_ECHO:
            return "\n".join(lines[k:]).lstrip("\n")
    return text


def strip_echo(text: str, ctx: FilterContext) -> str:
    """Remove the line before the cursor when the answer repeats it (whole, its end, or its indentation)."""
    before = ctx.line_before
    head = before.strip()
    if head and text.lstrip().startswith(head):
        rest = text.lstrip()[len(head) :]
        return rest.lstrip(" \t") if before[-1:].isspace() else rest
    if not head and before and text.startswith(before):
        return text[len(before) :]  # the cursor sits after the indentation the answer repeats
    if head:
        return _strip_partial_echo(text, before)
    return text


def _strip_partial_echo(text: str, before: str) -> str:
    """``x = foo(`` answered with ``foo(a, b)``: the answer starts with the end of the line; cut it.

    Only an overlap that starts at a word boundary of the line and has :data:`MIN_ECHO` characters counts.
    """
    line = before.rstrip()
    start = text.lstrip()
    for k in range(1, len(line)):  # the longest overlap first
        tail = line[k:]
        if _word(line[k - 1]) and _word(tail[0]):
            continue  # mid-word
        if len(tail.strip()) >= MIN_ECHO and start.startswith(tail.lstrip()):
            return start[len(tail.lstrip()) :]
    return text


def strip_suffix_overlap(text: str, ctx: FilterContext) -> str:
    """Drop a tail that repeats the rest of the cursor line (the model wrote past the hole)."""
    rest = ctx.rest_of_line.strip()
    stripped = text.rstrip()
    if rest and stripped.endswith(rest):
        return stripped[: -len(rest)]
    return text


def cut_at_suffix(text: str, ctx: FilterContext) -> str:
    """A block ends where it starts repeating the code after the cursor (the next non-blank line)."""
    following = next((line.strip() for line in ctx.lines_after if line.strip()), "")
    if ctx.mode is not Mode.MULTI or len("".join(following.split())) < MIN_ECHO:
        return text
    lines = text.split("\n")
    for k, line in enumerate(lines):
        if line.strip() == following:
            return "\n".join(lines[:k]).rstrip()
    return text


def reindent(text: str, ctx: FilterContext) -> str:
    """Indent a block the model wrote relative to its first line as the cursor's block.

    The cursor sits after the indentation of an empty line, so the first answer line needs none; the
    others need the cursor's indentation added unless the model already wrote them at the file's depth:
    after a block opener that is deeper than the cursor, otherwise at least as deep.
    """
    before = ctx.line_before
    lines = text.split("\n")
    rest = [line for line in lines[1:] if line.strip()]
    if ctx.mode is not Mode.MULTI or before.strip() or not before or not rest:
        return text
    first = _indent(lines[0])
    if first and all(_indent(line) >= first for line in rest):
        lines = [line[first:] for line in lines]
    elif first:
        return text
    else:
        depth = _indent(rest[0])
        opener = lines[0].rstrip().endswith((":", "{"))
        if depth > len(before) or (depth == len(before) and not opener):
            return text  # already at the file's depth
    return "\n".join([lines[0], *(before + line if line.strip() else "" for line in lines[1:])])


def drop_narration(text: str, ctx: FilterContext, language: str = "") -> str:
    """Drop the answer's leading comment lines when the cursor is in code.

    A small chat model often narrates the task as a comment (``# Replace <HOLE> with ...``) before, or
    instead of, the code; a suggestion of only such lines is none. In a comment, a comment is the answer.
    """
    marker = line_comment(language)
    markers = (marker,) if marker == "#" else (marker, "/*", "*")
    if ctx.line_before.strip().startswith(markers) or not language:
        return text
    lines = text.split("\n")
    while lines and lines[0].strip().startswith(markers):
        lines.pop(0)
    if len(lines) < len(text.split("\n")) and lines:
        lines[0] = lines[0].lstrip()  # the code now starts at the cursor
    return "\n".join(lines)


def drop_prose(raw: str, text: str) -> str:
    """An answer without a code fence that opens like an English sentence is an explanation, not code."""
    if _FENCE.match(raw) or not _PROSE.match(text.lstrip()):
        return text
    return ""


def drop_useless(text: str, ctx: FilterContext) -> str:
    """Nothing, only whitespace, or exactly the code after the cursor: no suggestion."""
    if not text.strip() or " ".join(text.split()) == " ".join(ctx.suffix.split()):
        return ""
    return text


def extract(raw: str, ctx: FilterContext, language: str = "") -> str:
    """The missing code from a chat answer; then the shared filters run on it."""
    ctx = FilterContext(ctx.prefix, ctx.suffix, shape(Window(ctx.prefix, ctx.suffix, 0), ctx.mode))
    text = drop_echoed_lines(unfence(raw.replace(HOLE, "")).strip("\n"), ctx)
    text = drop_prose(raw, drop_narration(text, ctx, language))
    if ctx.mode is Mode.SINGLE:
        text = next((line for line in text.split("\n") if line.strip()), "")
    else:
        text = text.split("\n\n", 1)[0]  # one block
    text = reindent(strip_echo(text, ctx), ctx)
    text = cut_at_suffix(strip_suffix_overlap(text, ctx), ctx)
    return drop_useless(text, ctx)
