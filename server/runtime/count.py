"""Counting a chat's prompt tokens without generating (Anthropic's ``count_tokens``).

The chat prologue up to the token count: the model found and checked, the prompt rendered
with the request's tools and ``think`` and tokenized by the loaded model, so the count is
the one a generation of the same request would evaluate (the whole conversation: the
request says whether it may be cut to the context).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from .kinds import Chat
from .prepare import (
    Timing,
    check_think,
    context_limit,
    merged_options,
    parse_keep_alive,
    parse_think,
    resolve_model,
)
from .requests import ChatRequest

if TYPE_CHECKING:
    from .generate import Runtime


async def count_tokens(runtime: Runtime, req: ChatRequest) -> int:
    """The number of tokens of ``req``'s rendered prompt."""
    kind = Chat(req)
    timing = Timing(time.monotonic())
    model = resolve_model(runtime.store, req.model, kind.missing())
    keep_alive = parse_keep_alive(req.keep_alive)
    kind.check(model)
    think = check_think(model, parse_think(req.think))
    kind.check_images(model)
    options = merged_options(model, req.options)
    template = kind.template(model)
    runner = await runtime.acquire(model, options, keep_alive, timing)
    try:
        num_ctx = context_limit(runner, options)
        _, tokens = await asyncio.to_thread(kind.prompt, runner.engine, template, model, think, num_ctx)
    finally:
        runtime.runners.release(runner)
    return len(tokens)
