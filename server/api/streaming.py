"""NDJSON progress streams with Ollama's error rules.

An error before the first line becomes a plain JSON error with its status code; after the
first line it is sent as a final ``{"error": ...}`` line on the 200 response.  With
``"stream": false`` the reply is the last progress object, or the error.  The producer is
a blocking iterator (disk and hashing work), so it runs in the thread pool.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from starlette.concurrency import iterate_in_threadpool
from starlette.responses import JSONResponse, Response, StreamingResponse

from .errors import HANDLED, error_response, status_of

NDJSON = "application/x-ndjson"


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


async def progress_response(events: Iterator[dict[str, Any]], stream: bool) -> Response:
    agen = iterate_in_threadpool(events)
    try:
        first = await agen.__anext__()
    except StopAsyncIteration:
        return JSONResponse({})
    except HANDLED as e:
        return error_response(str(e), status_of(e))

    if not stream:
        last = first
        try:
            async for event in agen:
                last = event
        except HANDLED as e:
            return error_response(str(e), status_of(e))
        return JSONResponse(last, media_type="application/json; charset=utf-8")

    async def body() -> AsyncIterator[bytes]:
        yield _line(first)
        try:
            async for event in agen:
                yield _line(event)
        except HANDLED as e:
            yield _line({"error": str(e)})
        except OSError as e:
            yield _line({"error": str(e)})

    return StreamingResponse(body(), media_type=NDJSON)
