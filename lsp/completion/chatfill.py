"""Fill-in-the-middle for models without FIM training, through the model's own chat template.

A chat or small base model (the embedded SmolLM2) has no FIM tokens and no ``insert`` capability, and a
raw StarCoder-token prompt is noise to it. Such a model can follow an instruction instead: the prompt
(``prompts/fim_chat.md``, user-overridable) shows the prefix and suffix around a ``<HOLE>`` marker and
asks for only the missing code. The request is a non-raw ``/api/generate``, so the server wraps it in the
model's chat template and the engine keeps one request path (sessions, cancellation, ``done_reason``).

Precedence (see :func:`use_chat`): native FIM (``insert``) first, then a raw family template whose name
or family matches (a FIM-trained model's own tokens beat any instruction), then this chat fill-in; the
``fimTemplate`` setting forces either (``chat``, or a family name).

Answers come wrapped in code fences, echo the line before the cursor, or run into the suffix:
:func:`extract` undoes that before the shared filters (``filters.postprocess``) run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from llamita.lsp import prompts

from .context import Window
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
_FENCE = re.compile(r"^\s*```[\w+#.-]*[ \t]*\n?")


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


def render(window: Window, mode: Mode, language: str, snippets: str = "", override_dir: str = "") -> str:
    directory = Path(override_dir).expanduser() if override_dir else None
    return prompts.render(
        PROMPT,
        directory,
        language=language or "text",
        shape=SHAPES.get(mode, SHAPES[Mode.MULTI]),
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


def strip_echo(text: str, ctx: FilterContext) -> str:
    """Remove the line before the cursor when the answer repeats it (whole or its indentation)."""
    before = ctx.line_before
    head = before.strip()
    if head and text.lstrip().startswith(head):
        rest = text.lstrip()[len(head) :]
        return rest.lstrip(" \t") if before[-1:].isspace() else rest
    if not head and before and text.startswith(before):
        return text[len(before) :]  # the cursor sits after the indentation the answer repeats
    return text


def strip_suffix_overlap(text: str, ctx: FilterContext) -> str:
    """Drop a tail that repeats the rest of the cursor line (the model wrote past the hole)."""
    rest = ctx.rest_of_line.strip()
    stripped = text.rstrip()
    if rest and stripped.endswith(rest):
        return stripped[: -len(rest)]
    return text


def extract(raw: str, ctx: FilterContext) -> str:
    """The missing code from a chat answer; then the shared filters run on it."""
    text = unfence(raw.replace(HOLE, ""))
    if ctx.mode is Mode.SINGLE:
        text = next((line for line in text.split("\n") if line.strip()), "")
    else:
        text = text.strip("\n")
    return strip_suffix_overlap(strip_echo(text, ctx), ctx)
