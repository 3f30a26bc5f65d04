"""The one responder: a stream of objects → an HTTP response, with Ollama's error rules.

:func:`respond` serves every streaming route: ``/api/generate``, ``/api/chat``, ``/v1``'s
completions (SSE) and the pull/push/create progress streams.  It owns

- the framing (an :class:`Encoder`: NDJSON lines or SSE ``data:`` events);
- the first-byte rule: an error before the first object is a plain error body with its status;
  after it, a last error object on the 200 stream (and, for SSE, no ``[DONE]``);
- ``"stream": false``: every object collected, then one reply built from them;
- the client going away: before the first byte (a prefill can take long) the producer is
  cancelled and the reply is a 499; after it, closing the body closes the producer.  Either way
  the producer's ``finally`` blocks run at once, so the engine aborts the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import anyio
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from llamita.server.engine import CANCELED

from .errors import BARE_JSON_TYPE, HANDLED, APIError, error_response, json_reply, status_of

NDJSON = "application/x-ndjson"
Json = dict[str, Any]

log = logging.getLogger("llamita")


def ndjson_line(obj: Json) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


@dataclass(frozen=True)
class Encoder:
    """How objects and errors are framed on one family of routes."""

    media_type: str
    frame: Callable[[Json], bytes]
    error_object: Callable[[str, int], Json]  # the last object of a stream that failed
    error_response: Callable[[str, int], Response]  # the reply of a request that failed
    end: bytes = b""  # after the last object of a stream that finished


NATIVE = Encoder(NDJSON, ndjson_line, lambda message, status: {"error": message}, error_response)
# create, pull and push: an error before the first line is sent with a bare application/json.
PROGRESS = replace(
    NATIVE, error_response=lambda message, status: error_response(message, status, None, BARE_JSON_TYPE)
)


Handler = Callable[[Request], Awaitable[Response]]


def failures_as(encoder: Encoder) -> Callable[[Handler], Handler]:
    """A route decorator: every failure before the response starts, in ``encoder``'s error shape
    (so each API family's SDKs raise their own typed errors)."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                return encoder.error_response(*failure(exc))

        return wrapped

    return decorate


def failure(e: BaseException) -> tuple[str, int]:
    """The message and status of a failed request; an unexpected exception is logged (a bug)."""
    if isinstance(e, HANDLED):
        return str(e), status_of(e)
    log.error("request failed", exc_info=e)
    return str(e) or type(e).__name__, 500


def _checked(obj: Json) -> Json:
    """An object, or its in-band ``{"error": ...}`` raised (a producer may report errors so)."""
    if "error" in obj:
        raise APIError(str(obj["error"]), 500)
    return obj


async def _wait_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def until_disconnect(request: Request, awaitable: Awaitable[Any]) -> tuple[bool, Any]:
    """Await ``awaitable`` unless the client goes away first: (finished, its task)."""
    task = asyncio.ensure_future(awaitable)
    watcher = asyncio.ensure_future(_wait_disconnect(request))
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if task in done:
        return True, task
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    return False, None


def _one(obj: Json) -> list[Json]:
    return [obj]


async def respond(
    request: Request,
    events: AsyncIterator[Json],
    *,
    stream: bool,
    collect: Callable[[list[Json]], Response],
    encoder: Encoder = NATIVE,
    translate: Callable[[Json], list[Json]] = _one,
    empty: Callable[[], Response] | None = None,
) -> Response:
    """The response to ``events``: streamed (each object through ``translate``, then framed) or,
    unless ``stream``, all of them given to ``collect``.  ``empty``: the reply when there is
    no object at all (a 499 by default: only a cancelled producer ends without one)."""
    aclose = getattr(events, "aclose", None)

    async def close() -> None:
        if aclose is not None:
            with anyio.CancelScope(shield=True):
                await aclose()

    finished, first_task = await until_disconnect(request, anext(events))
    if not finished:
        await close()
        return encoder.error_response(CANCELED, 499)
    try:
        first = _checked(first_task.result())
    except StopAsyncIteration:
        return empty() if empty is not None else encoder.error_response(CANCELED, 499)
    except Exception as e:
        await close()
        response = encoder.error_response(*failure(e))
        response.headers.update(getattr(e, "headers", None) or {})  # a 429's Retry-After
        return response

    if stream:

        async def body() -> AsyncIterator[bytes]:
            try:
                for obj in translate(first):
                    yield encoder.frame(obj)
                async for chunk in events:
                    for obj in translate(_checked(chunk)):
                        yield encoder.frame(obj)
            except Exception as e:  # after the first byte only the body can say it failed
                yield encoder.frame(encoder.error_object(*failure(e)))
                return
            finally:
                await close()
            if encoder.end:
                yield encoder.end

        return StreamingResponse(body(), media_type=encoder.media_type)

    async def gather() -> list[Json]:
        chunks = [first]
        try:
            async for chunk in events:
                chunks.append(_checked(chunk))
        finally:
            await close()
        return chunks

    finished, task = await until_disconnect(request, gather())
    if not finished:
        return encoder.error_response(CANCELED, 499)
    try:
        return collect(task.result())
    except Exception as e:
        return encoder.error_response(*failure(e))


# ---- progress streams (pull, push, create) -------------------------------------------------
class _Producer:
    """A blocking iterator, with ``next`` and ``close`` serialised (they run on different
    threads, and a generator cannot be closed while it is executing)."""

    def __init__(self, events: Iterator[Json]) -> None:
        self._events = events
        self._lock = threading.Lock()

    def __iter__(self) -> _Producer:
        return self

    def __next__(self) -> Json:
        with self._lock:
            return next(self._events)

    def close(self) -> None:
        with self._lock:
            close = getattr(self._events, "close", None)
            if close is not None:
                close()


async def _in_threads(events: Iterator[Json]) -> AsyncIterator[Json]:
    """The blocking producer (disk and hashing work) run in the thread pool.  However the
    response ends, it is closed at once, so its ``finally`` blocks run now rather than whenever
    the garbage collector finds the cycle a cancelled stream leaves (a pull stops its download)."""
    producer = _Producer(events)
    try:
        async for event in iterate_in_threadpool(producer):
            yield event
    finally:
        with anyio.CancelScope(shield=True):  # also when the response was cancelled
            await run_in_threadpool(producer.close)


def _last(chunks: list[Json]) -> Response:
    return json_reply(chunks[-1], media_type=BARE_JSON_TYPE)


async def progress_response(request: Request, events: Iterator[Json], stream: bool) -> Response:
    """A progress stream; with ``"stream": false`` the reply is its last object (or the error)."""
    return await respond(
        request,
        _in_threads(events),
        stream=stream,
        collect=_last,
        encoder=PROGRESS,
        empty=lambda: json_reply({}, media_type=BARE_JSON_TYPE),
    )
