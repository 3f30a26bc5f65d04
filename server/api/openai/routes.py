"""The OpenAI-compatible ``/v1`` routes: thin translators over the runtime.

There is one inference path.  Each handler translates the body to a native one
(:mod:`.request`), then to the runtime's typed request (:mod:`..request`), runs it on the
runtime (the code behind ``/api/chat``, ``/api/generate`` and ``/api/embed``) and translates
the native chunks back (:mod:`.response`); :func:`..stream.respond` sends them as SSE.  Errors
use the OpenAI shape so SDKs raise their typed exceptions: before the first byte as a status
plus ``{"error": {...}}``, after it as a final ``data: {"error": {...}}`` event (the SDKs raise
on it) with no ``[DONE]``.  A request superseded by a newer one of the same
``X-Llamita-Session`` (or aborted) is such an error, with status 499 and type ``canceled``:
never a completion with ``finish_reason: null``.  A client that hangs up before the response
starts stops the generation, as on the native routes.

``/v1/responses`` (OpenAI Responses) runs the same way: its input items become a native chat
(:mod:`.responses_request`, after the conversation of a ``previous_response_id`` kept by
:mod:`.responses_store`), and :mod:`.responses_stream` turns the chunks into its typed events
(``event:`` lines, ``sequence_number``) or, not streamed, into the one response object.  A
failure after the first byte ends that stream with a ``response.failed`` event.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from llamita.server.api.request import (
    chat_request,
    embed_request,
    generate_request,
    owner_of,
    priority_of,
    read_json,
    runtime_of,
    session_of,
    store_of,
)
from llamita.server.api.stream import Encoder, failures_as, respond
from llamita.server.model.model import ModelNotFound
from llamita.server.store.names import require_name

from .request import (
    embedding_format,
    from_chat_request,
    from_completion_request,
    from_embedding_request,
    stream_settings,
)
from .response import (
    ChatStream,
    CompletionStream,
    merge_chat,
    merge_generate,
    new_id,
    openai_error,
    to_chat_chunks,
    to_chat_completion,
    to_completion,
    to_completion_chunks,
    to_embedding_list,
    to_model,
    to_model_list,
)
from .responses_reply import previous_not_found, response_not_found
from .responses_request import from_responses_request, previous_response_id
from .responses_store import StoredResponse, response_store
from .responses_stream import ResponsesTurn, frame

SSE = "text/event-stream"
DONE = b"data: [DONE]\n\n"
NO_RESPONSE = "the model returned no response"

Json = dict[str, Any]
Handler = Callable[[Request], Awaitable[Response]]


def error_response(message: str, status: int) -> JSONResponse:
    return JSONResponse(openai_error(message, status), status_code=status)


def sse_event(obj: Json) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


OPENAI = Encoder(SSE, sse_event, openai_error, error_response, DONE)


openai_errors = failures_as(OPENAI)  # every failure before the response starts, OpenAI-shaped


def _no_response() -> Response:
    return error_response(NO_RESPONSE, 500)


@dataclass(frozen=True)
class _Completion:
    """What tells ``/v1/chat/completions`` and ``/v1/completions`` apart."""

    chat: bool  # run as /api/chat (else /api/generate)
    native_body: Callable[[Json], Json]
    prefix: str  # of the response id
    stream_state: type[ChatStream] | type[CompletionStream]
    to_chunks: Callable[[Json, Any], list[Json]]
    merge: Callable[[list[Json]], Json]
    to_reply: Callable[[Json, str], Json]


def _completions(kind: _Completion) -> Handler:
    @openai_errors
    async def handler(request: Request) -> Response:
        body = await read_json(request)
        stream, include_usage = stream_settings(body)
        native = kind.native_body(body)
        runtime, session, priority = runtime_of(request), session_of(request), priority_of(request)
        owner = owner_of(request)
        if kind.chat:
            events = runtime.chat(chat_request(native), session, priority, owner)
        else:
            events = runtime.generate(generate_request(native), session, priority, owner)
        state = kind.stream_state(new_id(kind.prefix), include_usage)
        return await respond(
            request,
            events,
            stream=stream,
            encoder=OPENAI,
            translate=lambda chunk: kind.to_chunks(chunk, state),
            collect=lambda chunks: JSONResponse(kind.to_reply(kind.merge(chunks), state.id)),
            empty=_no_response,
        )

    return handler


CHAT = _Completion(
    True, from_chat_request, "chatcmpl", ChatStream, to_chat_chunks, merge_chat, to_chat_completion
)
COMPLETION = _Completion(
    False,
    from_completion_request,
    "cmpl",
    CompletionStream,
    to_completion_chunks,
    merge_generate,
    to_completion,
)
chat_completions = _completions(CHAT)
completions = _completions(COMPLETION)


@openai_errors
async def embeddings(request: Request) -> Response:
    body = await read_json(request)
    encoding = embedding_format(body)
    native_body = from_embedding_request(body)
    result = await runtime_of(request).embed(embed_request(native_body), owner_of(request))
    return JSONResponse(to_embedding_list(result, encoding, model=native_body["model"]))


@openai_errors
async def list_models(request: Request) -> Response:
    store = store_of(request)
    return JSONResponse(await run_in_threadpool(lambda: to_model_list(store.iter_manifests())))


@openai_errors
async def retrieve_model(request: Request) -> Response:
    """``/v1/models/{name}``: the id is echoed as given (``name:tag`` arrives with its colon)."""
    given = request.path_params["model"]
    name = require_name(given)
    manifest = await run_in_threadpool(store_of(request).get, name)
    if manifest is None:
        raise ModelNotFound(name.shortest)
    return JSONResponse(to_model(given, manifest.modified, name.namespace))


@openai_errors
async def create_response(request: Request) -> Response:
    """``/v1/responses``: the input items (after a stored conversation) run as a native chat."""
    body = await read_json(request)
    store, history = response_store(request.app), None
    previous = previous_response_id(body)
    if previous is not None:
        stored = store.get(previous)
        if stored is None:
            return JSONResponse(previous_not_found(previous), status_code=404)
        history = stored.messages
    call = from_responses_request(body, history)

    def keep(response: Json, answer: Json) -> None:
        store.put(response["id"], StoredResponse(response, [*call.messages, answer]))

    turn = ResponsesTurn(call.settings, keep if call.store else None)
    events = runtime_of(request).chat(
        chat_request(call.native), session_of(request), priority_of(request), owner_of(request)
    )
    return await respond(
        request,
        events,
        stream=call.stream,
        encoder=Encoder(SSE, frame, turn.failed, error_response),
        translate=turn.translate,
        collect=lambda chunks: JSONResponse(turn.replay(chunks)),
        empty=_no_response,
    )


@openai_errors
async def retrieve_response(request: Request) -> Response:
    response_id = request.path_params["response_id"]
    stored = response_store(request.app).get(response_id)
    if stored is None:
        return JSONResponse(response_not_found(response_id), status_code=404)
    return JSONResponse(stored.response)


ROUTES: list[Route] = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/completions", completions, methods=["POST"]),
    Route("/v1/embeddings", embeddings, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model:path}", retrieve_model, methods=["GET"]),
    Route("/v1/responses", create_response, methods=["POST"]),
    Route("/v1/responses/{response_id}", retrieve_response, methods=["GET"]),
]
