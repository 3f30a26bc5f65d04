"""NDJSON progress streams with Ollama's error rules.

An error before the first line becomes a plain JSON error with its status code; after the
first line it is sent as a final ``{"error": ...}`` line on the 200 response.  With
``"stream": false`` the reply is the last progress object, or the error.  The producer is
a blocking iterator (disk and hashing work), so it runs in the thread pool.  When the
response ends for any reason (the client hung up included) the producer is closed at
once, so its ``finally`` blocks run now rather than whenever the garbage collector finds
the cycle a cancelled stream leaves behind (a pull uses this to stop its download).
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.responses import JSONResponse, Response, StreamingResponse

from .errors import HANDLED, error_response, status_of

NDJSON = "application/x-ndjson"


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


class _Producer:
    """The blocking iterator, with ``next`` and ``close`` serialised (they run on different
    threads, and a generator cannot be closed while it is executing)."""

    def __init__(self, events: Iterator[dict[str, Any]]) -> None:
        self._events = events
        self._lock = threading.Lock()

    def __iter__(self) -> _Producer:
        return self

    def __next__(self) -> dict[str, Any]:
        with self._lock:
            return next(self._events)

    def close(self) -> None:
        with self._lock:
            close = getattr(self._events, "close", None)
            if close is not None:
                close()

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):  # also when the response was cancelled
            await run_in_threadpool(self.close)


async def progress_response(events: Iterator[dict[str, Any]], stream: bool) -> Response:
    producer = _Producer(events)
    agen = iterate_in_threadpool(producer)
    try:
        first = await agen.__anext__()
    except StopAsyncIteration:
        return JSONResponse({})
    except HANDLED as e:
        await producer.aclose()
        return error_response(str(e), status_of(e))

    if not stream:
        last = first
        try:
            async for event in agen:
                last = event
        except HANDLED as e:
            return error_response(str(e), status_of(e))
        finally:
            await producer.aclose()
        return JSONResponse(last, media_type="application/json; charset=utf-8")

    async def body() -> AsyncIterator[bytes]:
        try:
            yield _line(first)
            async for event in agen:
                yield _line(event)
        except HANDLED as e:
            yield _line({"error": str(e)})
        except OSError as e:
            yield _line({"error": str(e)})
        finally:
            await producer.aclose()

    return StreamingResponse(body(), media_type=NDJSON)
