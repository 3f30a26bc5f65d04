"""Drive a real ``Engine`` in tests: a ChatML prompt in, its text and ``Done`` out."""

from __future__ import annotations

from llamita.server.engine.core import Engine
from llamita.server.engine.request import Done, SamplingParams, Token

CHAT = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"


async def collect(engine: Engine, text: str, session: str | None = None, **params) -> tuple[str, Done]:
    """The whole answer to ``text`` as SmolLM2's chat template asks it, and its last event."""
    out, done = "", None
    async for event in engine.generate(engine.tokenize(CHAT.format(text)), SamplingParams(**params), session):
        if isinstance(event, Token):
            out += event.text
        else:
            done = event
    assert done is not None
    return out, done
