"""The OpenAI-compatible ``/v1`` routes: thin handlers over the native inference coroutines.

There is one inference path.  Each handler translates the body, runs the native coroutine
from :mod:`.inference` (the code behind ``/api/chat``, ``/api/generate`` and ``/api/embed``)
and translates the chunks back.  The pure translations live in :mod:`.openai_request` and
:mod:`.openai_response` and are re-exported here.  Errors use the OpenAI shape so SDKs raise
their typed exceptions: before the first byte as a status plus ``{"error": {...}}``, after it
as a final ``data: {"error": {...}}`` event (the SDKs raise on it) with no ``[DONE]``.  A request
superseded by a newer one of the same ``X-Llamita-Session`` (or aborted) is such an error, with
status 499 and type ``canceled``: never a completion with ``finish_reason: null``.  A client that
hangs up before the response starts stops the generation, as on the native routes.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from types import ModuleType
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from llamita.server.api.errors import HANDLED, APIError, status_of
from llamita.server.api.native import read_json, store_of
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

__all__ = [
    "ROUTES",
    "ChatStream",
    "CompletionStream",
    "chat_completions",
    "completions",
    "embedding_format",
    "embeddings",
    "from_chat_request",
    "from_completion_request",
    "from_embedding_request",
    "list_models",
    "merge_chat",
    "merge_generate",
    "new_id",
    "openai_error",
    "retrieve_model",
    "stream_settings",
    "to_chat_chunks",
    "to_chat_completion",
    "to_completion",
    "to_completion_chunks",
    "to_embedding_list",
    "to_model",
    "to_model_list",
]

log = logging.getLogger("llamita")

SSE = "text/event-stream"
DONE = b"data: [DONE]\n\n"

Json = dict[str, Any]
Handler = Callable[[Request], Awaitable[Response]]
ChunkConverter = Callable[[Json], list[Json]]


def _inference() -> ModuleType:
    """The native inference module, imported on first use: it pulls in llama.cpp."""
    from llamita.server.api import inference

    return inference


def _status(exc: Exception) -> int:
    if not isinstance(exc, HANDLED):
        log.error("/v1 request failed", exc_info=exc)
    return status_of(exc)


def error_response(message: str, status: int) -> JSONResponse:
    return JSONResponse(openai_error(message, status), status_code=status)


def openai_errors(handler: Handler) -> Handler:
    """Report every failure before the response starts as an OpenAI error body."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:
            return error_response(str(exc), _status(exc))

    return wrapped


def _sse(obj: Json) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def _checked(chunk: Json) -> Json:
    """A native chunk, or its ``{"error": ...}`` raised (a runner may report errors in-band)."""
    if "error" in chunk:
        raise APIError(str(chunk["error"]), 500)
    return chunk


async def _open(call: Any) -> tuple[Json, AsyncIterator[Json]]:
    """Start a native stream and take its first chunk, so request errors surface before any byte.

    ``call`` is what ``run_chat``/``run_generate`` returned: an async iterator, or a
    coroutine resolving to one.
    """
    chunks = await call if inspect.isawaitable(call) else call
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        raise APIError("the model returned no response", 500) from None
    return _checked(first), chunks


async def _close(chunks: AsyncIterator[Json]) -> None:
    """Stop native generation (a client that disconnects must not keep the model busy)."""
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()


async def _unless_gone(request: Request, awaitable: Awaitable[Any]) -> Any:
    """``await awaitable``, cancelled when the client hangs up first (then generation stops too)."""
    finished, task = await _inference().until_disconnect(request, awaitable)
    if not finished:
        raise APIError("request canceled", 499)
    return task.result()


async def _collect(first: Json, chunks: AsyncIterator[Json]) -> list[Json]:
    collected = [first]
    try:
        async for chunk in chunks:
            collected.append(_checked(chunk))
    finally:
        await _close(chunks)
    return collected


def _event_stream(first: Json, chunks: AsyncIterator[Json], to_events: ChunkConverter) -> StreamingResponse:
    async def events() -> AsyncIterator[bytes]:
        try:
            for event in to_events(first):
                yield _sse(event)
            async for chunk in chunks:
                for event in to_events(_checked(chunk)):
                    yield _sse(event)
        except Exception as exc:
            yield _sse(openai_error(str(exc), _status(exc)))
            return
        finally:
            await _close(chunks)
        yield DONE

    return StreamingResponse(events(), media_type=SSE)


@openai_errors
async def chat_completions(request: Request) -> Response:
    body = await read_json(request)
    stream, include_usage = stream_settings(body)
    native_body = from_chat_request(body)
    first, chunks = await _unless_gone(request, _open(_inference().run_chat(request, native_body)))
    completion_id = new_id("chatcmpl")
    if stream:
        state = ChatStream(completion_id, include_usage)
        return _event_stream(first, chunks, lambda chunk: to_chat_chunks(chunk, state))
    merged = merge_chat(await _unless_gone(request, _collect(first, chunks)))
    return JSONResponse(to_chat_completion(merged, completion_id))


@openai_errors
async def completions(request: Request) -> Response:
    body = await read_json(request)
    stream, include_usage = stream_settings(body)
    native_body = from_completion_request(body)
    first, chunks = await _unless_gone(request, _open(_inference().run_generate(request, native_body)))
    completion_id = new_id("cmpl")
    if stream:
        state = CompletionStream(completion_id, include_usage)
        return _event_stream(first, chunks, lambda chunk: to_completion_chunks(chunk, state))
    merged = merge_generate(await _unless_gone(request, _collect(first, chunks)))
    return JSONResponse(to_completion(merged, completion_id))


@openai_errors
async def embeddings(request: Request) -> Response:
    body = await read_json(request)
    encoding = embedding_format(body)
    native_body = from_embedding_request(body)
    result = _inference().run_embed(request, native_body)
    if inspect.isawaitable(result):
        result = await result
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


ROUTES: list[Route] = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/completions", completions, methods=["POST"]),
    Route("/v1/embeddings", embeddings, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model:path}", retrieve_model, methods=["GET"]),
]
