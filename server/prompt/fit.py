"""From a generate/chat request to the prompt text and tokens the engine evaluates.

Rendering follows Ollama (see :mod:`template.render`); token-level work (truncation to the
context, BOS handling, the deprecated ``context``) needs the model's tokenizer and lives here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from llamita.server.template import Template

from .render import chat_prompt_messages, render_generate, render_prompt

Tokenize = Callable[[str], list[int]]


class PromptTooLong(ValueError):
    """Raised when the prompt does not fit in the context and truncation is off."""

    def __init__(self) -> None:
        super().__init__(
            "the prompt is longer than the context length currently available to the model; "
            "use a shorter prompt or raise num_ctx"
        )


def generate_text(
    template: Template,
    *,
    prompt: str,
    suffix: str,
    system: str,
    model_system: str,
    model_messages: Sequence[Any],
    has_context: bool,
    think: bool | str | None,
) -> str:
    """The rendered prompt of a non-raw ``/api/generate``."""
    return render_generate(
        template,
        prompt,
        suffix=suffix,
        system=system,
        model_system=model_system,
        model_messages=[] if has_context else list(model_messages),
        think=think,
    )


def chat_text(
    template: Template,
    messages: Sequence[dict[str, Any]],
    *,
    model_system: str,
    model_messages: Sequence[Any],
    tools: list[Any] | None,
    think: bool | str | None,
    num_ctx: int,
    tokenize: Tokenize,
    truncate: bool = True,
) -> str:
    """Render a chat, dropping the oldest turns until it fits ``num_ctx`` (Ollama's chatPrompt).

    System messages and the last message are always kept.  Ollama renders and tokenizes once
    per turn; dropping turns never makes the rendering longer, so a search for the first kept
    message gives the same result in O(log M) renders.  It starts from the newest end (one
    turn, two, four, ... then bisects), so a 200-turn chat that keeps 8 turns renders and
    tokenizes only texts up to twice the kept size, never the whole chat; a chat whose text is
    short enough to fit is tried whole first (one render, the common case).  Images count no
    tokens here: the runtime refuses them before rendering (no multimodal path).
    """
    msgs = chat_prompt_messages(messages, model_system=model_system, model_messages=model_messages)
    renders: dict[int, str] = {}

    def render(start: int) -> str:
        """The chat from message ``start`` on, behind the system messages before it."""
        if start not in renders:
            kept = [m for m in msgs[:start] if m.get("role") == "system"] + list(msgs[start:])
            renders[start] = render_prompt(template, kept, tools=tools, think=think)
        return renders[start]

    def fits(start: int) -> bool:
        return len(tokenize(render(start))) <= num_ctx

    if not truncate or len(msgs) <= 1:
        return render(0)
    too_long = -1  # the largest start known not to fit (-1: none yet)
    if _may_fit(msgs, num_ctx):
        if fits(0):
            return render(0)
        too_long = 0
    return render(first_kept(fits, len(msgs) - 1, too_long))


def first_kept(fits: Callable[[int], bool], last: int, too_long: int = -1) -> int:
    """The smallest start in ``(too_long, last)`` that fits, else ``last`` (kept even alone).

    ``fits`` must be monotone (a later start fits when an earlier one does): gallop from the
    end, doubling the kept turns until one does not fit, then bisect between the two.
    """
    fitting, step = last, 1
    while fitting - too_long > 1:
        start = max(last - step, too_long + 1)
        if not fits(start):
            too_long = start
            break
        fitting, step = start, step * 2
    while fitting - too_long > 1:
        middle = (fitting + too_long) // 2
        if fits(middle):
            fitting = middle
        else:
            too_long = middle
    return fitting


# Tokens are rarely over 8 characters on average; a longer chat is not tried whole first (a
# wrong guess costs renders, never a different result: see ``first_kept``).
_CHARS_PER_TOKEN = 8


def _may_fit(msgs: Sequence[dict[str, Any]], num_ctx: int) -> bool:
    """Whether the whole chat is short enough that it may fit: then it is tried first."""
    size = sum(len(str(m.get("content") or "")) for m in msgs)
    return size <= _CHARS_PER_TOKEN * num_ctx


def fit_tokens(tokens: list[int], num_ctx: int, num_keep: int, truncate: bool) -> list[int]:
    """Make a token prompt fit: keep ``num_keep`` leading tokens and the most recent rest.

    Like llama-server's context shift as Ollama drives it: about half the window stays free
    for the answer when the prompt was too long.
    """
    if len(tokens) < num_ctx:
        return tokens
    if not truncate:
        raise PromptTooLong()
    keep = max(0, min(num_keep, num_ctx // 2))
    tail = max(num_ctx // 2 - keep, 1)
    return tokens[:keep] + tokens[-tail:]


def dedupe_bos(tokens: list[int], bos: int) -> list[int]:
    """A template that writes the BOS text itself, on a vocab that also adds BOS: keep one."""
    if len(tokens) >= 2 and tokens[0] == tokens[1] == bos:
        return tokens[1:]
    return tokens
