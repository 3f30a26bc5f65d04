"""A fake engine implementing the engine façade, so API tests run without a GGUF's weights.

``Runners(factory=FakeEngines(...))`` loads one of these wherever a real model would be loaded
(the store still holds a tiny generated GGUF: the model's metadata, template and capabilities
are real).  Tokens are characters; a request yields its scripted texts then a ``Done``, or,
with ``hang``, waits until it is aborted (a prefill that never ends), or with
``hang_after``, does so after its first texts (a long answer).  Every request is
recorded, and ``started`` / ``aborted`` let a test wait on state instead of on time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llamita.server.engine import Done, EngineStats, Event, FinishReason, Priority, SamplingParams, Token

BOS = 1


@dataclass
class Submitted:
    prompt: list[int]
    params: SamplingParams
    session: str | None
    priority: Priority = Priority.NORMAL
    owner: str | None = None
    finished: bool = False
    aborted: bool = False


@dataclass
class FakeEngines:
    """The engine factory; its settings apply to every engine it makes."""

    texts: list[str] = field(default_factory=lambda: ["Hello", " world"])
    hang: bool = False  # generate waits until the request is aborted
    hang_after: int | None = None  # ... or does so after this many texts
    made: list[FakeEngine] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)  # a request reached an engine

    def __call__(self, path: Path, load: Any, context: Any, *args: Any) -> FakeEngine:
        engine = FakeEngine(self, path, context.n_ctx_seq)
        self.made.append(engine)
        return engine

    @property
    def requests(self) -> list[Submitted]:
        return [r for engine in self.made for r in engine.requests]


class FakeEngine:
    bos = BOS
    add_bos = True
    n_vocab = 0x110000 + 2
    healthy = True
    failure: str | None = None

    def __init__(self, factory: FakeEngines, path: Path, n_ctx: int) -> None:
        self.factory = factory
        self.path = path
        self.n_ctx = n_ctx
        self.requests: list[Submitted] = []
        self.closed = False

    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = True) -> list[int]:
        return ([BOS] if add_special else []) + [ord(c) + 2 for c in text]

    def stats(self) -> EngineStats:
        running = sum(1 for r in self.requests if not r.finished)
        return EngineStats(aborted=sum(r.aborted for r in self.requests), running=running, n_ctx=self.n_ctx)

    @property
    def active(self) -> int:
        return self.stats().running

    def generate(
        self,
        prompt: list[int],
        params: SamplingParams,
        session: str | None = None,
        priority: Priority = Priority.NORMAL,
        owner: str | None = None,
    ) -> AsyncGenerator[Event, None]:
        request = Submitted(list(prompt), params, session, priority, owner)
        self.requests.append(request)
        return self._events(request)

    async def _events(self, request: Submitted) -> AsyncGenerator[Event, None]:
        self.factory.started.set()
        try:
            if self.factory.hang:
                await asyncio.Event().wait()  # only an abort (the iterator closed) ends it
            texts = self.factory.texts
            if request.params.num_predict >= 0:
                texts = texts[: request.params.num_predict]
            for i, text in enumerate(texts):
                if i == self.factory.hang_after:
                    await asyncio.Event().wait()
                yield Token(text=text, token_id=i + 2)
            request.finished = True
            reason = FinishReason.LENGTH if len(texts) < len(self.factory.texts) else FinishReason.STOP
            yield Done(reason, len(request.prompt), len(request.prompt), 0, 1, len(texts), 1, request.prompt)
        finally:
            if not request.finished:
                request.aborted = request.finished = True

    async def embed(self, inputs: list[list[int]]) -> list[list[float]]:
        return [[float(len(tokens)), 1.0] for tokens in inputs]

    def close(self) -> None:
        self.closed = True
