"""``/v1/messages`` and ``/v1/messages/count_tokens``: Anthropic's Messages API over the runtime.

There is one inference path: the body becomes a native chat body (:mod:`.request`), then
the runtime's typed request (:mod:`..request`), runs as ``/api/chat`` runs, and the native
chunks come back as a message or as Anthropic's SSE events (:mod:`.response`), sent by
:func:`..stream.respond`.  Errors are Anthropic's ``{"type": "error", "error": {...}}`` so
the SDKs raise their typed exceptions: before the first byte with the status, after it as
an ``event: error`` with no ``message_stop``.  A request superseded by a newer one of the
same ``X-Llamita-Session`` (or aborted) is such an error with status 499.

Claude Code asks every model to think; as Ollama does on this API, a model that cannot
think runs without thinking instead of refusing the request.  ``anthropic-version`` and
``anthropic-beta`` headers and the ``?beta=true`` query are accepted and ignored.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from llamita.server.api.openai.response import merge_chat
from llamita.server.api.request import (
    chat_request,
    owner_of,
    priority_of,
    read_json,
    runtime_of,
    session_of,
    store_of,
)
from llamita.server.api.stream import Encoder, failures_as, respond
from llamita.server.runtime.count import count_tokens
from llamita.server.runtime.errors import InvalidRequest
from llamita.server.runtime.prepare import resolve_model

from .request import from_count_request, from_messages_request, stop_sequences, thinking_shown
from .response import MessageStream, anthropic_error, error_status, new_message_id, to_events, to_message

SSE = "text/event-stream"
NO_RESPONSE = "the model returned no response"

Json = dict[str, Any]
Handler = Callable[[Request], Awaitable[Response]]


def error_response(message: str, status: int) -> JSONResponse:
    return JSONResponse(anthropic_error(message, status), status_code=error_status(status))


def sse_event(obj: Json) -> bytes:
    """Anthropic's framing: each event named after its ``type``."""
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return f"event: {obj['type']}\ndata: {data}\n\n".encode()


ANTHROPIC = Encoder(SSE, sse_event, anthropic_error, error_response)


anthropic_errors = failures_as(ANTHROPIC)  # every failure before the response starts, Anthropic-shaped


def _relaxed(request: Request, native: Json) -> Json:
    """``native`` without ``think`` when it asks a model that cannot think to (Ollama's relaxing)."""
    if not native.get("think"):
        return native
    model = resolve_model(store_of(request), native["model"], InvalidRequest("model is required"))
    if "thinking" in model.capabilities:
        return native
    return {key: value for key, value in native.items() if key != "think"}


@anthropic_errors
async def messages(request: Request) -> Response:
    body = await read_json(request)
    native = _relaxed(request, from_messages_request(body))
    events = runtime_of(request).chat(
        chat_request(native), session_of(request), priority_of(request), owner_of(request)
    )
    stops, shown = stop_sequences(body), thinking_shown(body)
    state = MessageStream(new_message_id(), native["model"], stops, shown)
    return await respond(
        request,
        events,
        stream=native["stream"],
        encoder=ANTHROPIC,
        translate=lambda chunk: to_events(chunk, state),
        collect=lambda chunks: JSONResponse(
            to_message(merge_chat(chunks), state.id, state.model, stops, shown)
        ),
        empty=lambda: error_response(NO_RESPONSE, 500),
    )


@anthropic_errors
async def count(request: Request) -> Response:
    """The prompt's tokens, rendered and tokenized by the model as a generation would be."""
    body = await read_json(request)
    native = _relaxed(request, from_count_request(body))
    return JSONResponse({"input_tokens": await count_tokens(runtime_of(request), chat_request(native))})


ROUTES: list[Route] = [
    Route("/v1/messages", messages, methods=["POST"]),
    Route("/v1/messages/count_tokens", count, methods=["POST"]),
]
