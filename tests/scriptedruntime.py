"""A scripted stand-in for ``app.state.runtime``, for the route tests of every API dialect.

What a real model cannot be made to do on cue (fail mid-stream, be superseded, return an
empty reply) is scripted here: the runtime records each typed request and replays ``script``
(chunks, and exceptions raised where they stand).  One kit, so the Anthropic, OpenAI chat and
Responses route tests see the runtime through the same signatures the real one has.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from nativechunks import EMBEDDINGS

from llamita.server.runtime.requests import ChatRequest, EmbedRequest, GenerateRequest


class ScriptedRuntime:
    """Records requests, replays a script of native chunks and errors; ``closed`` once drained."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.script: list[dict[str, Any] | Exception] = []
        self.embed_reply: dict[str, Any] | Exception = EMBEDDINGS
        self.closed = False

    async def _replay(self) -> AsyncIterator[dict[str, Any]]:
        try:
            for item in self.script:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self.closed = True

    def chat(
        self,
        req: ChatRequest,
        session: str | None = None,
        priority: str | None = None,
        owner: str | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        self.requests.append(req)
        return self._replay()

    def generate(
        self,
        req: GenerateRequest,
        session: str | None = None,
        priority: str | None = None,
        owner: str | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        self.requests.append(req)
        return self._replay()

    async def embed(self, req: EmbedRequest, owner: str | None = None) -> dict[str, Any]:
        self.requests.append(req)
        if isinstance(self.embed_reply, Exception):
            raise self.embed_reply
        return self.embed_reply
