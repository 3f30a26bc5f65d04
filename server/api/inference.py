"""``/api/generate``, ``/api/chat``, ``/api/embed``, ``/api/embeddings`` and ``/api/ps``.

Thin routes: the body is translated (:mod:`.request`), the runtime
(:class:`~llamita.server.runtime.generate.Runtime`, on ``app.state``) produces the native
chunks, and :func:`.stream.respond` sends them.  A request carrying ``X-Llamita-Session``
supersedes that editor's previous request: the older one ends with a 499 (before its first
byte) or a last ``{"error"}`` line, never as a short success.
"""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from llamita.server.gocompat.time import rfc3339

from .errors import json_reply
from .request import (
    chat_request,
    embed_request,
    generate_request,
    owner_of,
    priority_of,
    read_json,
    runtime_of,
    session_of,
    wants_stream,
)
from .stream import respond

Json = dict[str, Any]


def merge(chunks: list[Json], field: str) -> Json:
    """The non-streamed reply: the last chunk with the text (and thinking, logprobs, tool
    calls) of every chunk; ``field`` is ``response`` (generate) or ``message`` (chat)."""
    final = dict(chunks[-1])
    logprobs = [entry for c in chunks for entry in c.get("logprobs") or []]
    if logprobs:
        final["logprobs"] = logprobs
    if field == "response":
        final["response"] = "".join(c.get("response", "") for c in chunks)
        thinking = "".join(c.get("thinking", "") for c in chunks)
        if thinking:
            final["thinking"] = thinking
    else:
        message = dict(final.get("message") or {"role": "assistant"})
        message["content"] = "".join((c.get("message") or {}).get("content", "") for c in chunks)
        thinking = "".join((c.get("message") or {}).get("thinking", "") for c in chunks)
        if thinking:
            message["thinking"] = thinking
        calls = [call for c in chunks for call in (c.get("message") or {}).get("tool_calls") or []]
        if calls:
            message["tool_calls"] = calls
        final["message"] = message
    return final


def _streams(body: Json, work: str) -> bool:
    """Streamed unless ``"stream": false``; a load or unload request (no ``prompt``, no
    ``messages``) is one JSON object either way, as Ollama answers it with ``c.JSON``."""
    return wants_stream(body) and bool(body.get(work))


async def generate(request: Request) -> Response:
    body = await read_json(request)
    events = runtime_of(request).generate(
        generate_request(body), session_of(request), priority_of(request), owner_of(request)
    )
    return await respond(
        request, events, stream=_streams(body, "prompt"), collect=lambda c: json_reply(merge(c, "response"))
    )


async def chat(request: Request) -> Response:
    body = await read_json(request)
    events = runtime_of(request).chat(
        chat_request(body), session_of(request), priority_of(request), owner_of(request)
    )
    return await respond(
        request, events, stream=_streams(body, "messages"), collect=lambda c: json_reply(merge(c, "message"))
    )


async def embed(request: Request) -> Response:
    body = await read_json(request)
    return json_reply(await runtime_of(request).embed(embed_request(body), owner_of(request)))


async def embeddings(request: Request) -> Response:
    body = await read_json(request)
    return json_reply(await runtime_of(request).embed(embed_request(body, legacy=True), owner_of(request)))


async def ps(request: Request) -> Response:
    """Ollama's loaded-model list; beyond Ollama, ``healthy`` (and ``failure`` when false): an
    engine that stopped is reloaded by the model's next request."""
    models = []
    for runner in request.app.state.runners.ps():
        name = runner.model.name
        expires = runner.expires_at if math.isfinite(runner.duration) else 253402300799.0
        size, size_vram = runner.sizes()
        entry = {
            "name": name.shortest,
            "model": name.shortest,
            "size": size,
            "digest": runner.model.manifest.digest,
            "details": {**runner.model.details(), "parent_model": ""},  # Ollama's ps leaves it out
            "expires_at": rfc3339(min(expires, 253402300799.0)),
            "size_vram": size_vram,
            "context_length": runner.num_ctx,
            "healthy": runner.healthy,
        }
        if not runner.healthy:
            entry["failure"] = runner.failure
        models.append(entry)
    return json_reply({"models": models})
