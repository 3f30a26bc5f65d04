"""api/stream.py: framing, the first-byte error rule, collecting, and clients that leave."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from llamita.server.api.openai.routes import OPENAI
from llamita.server.api.stream import progress_response, respond
from llamita.server.runtime.errors import Canceled, InvalidRequest

Json = dict[str, Any]


class Producer:
    """A scripted stream of objects (an exception item is raised) that records being closed."""

    def __init__(self, *items: Json | Exception, hang: bool = False) -> None:
        self.items = items
        self.hang = hang
        self.closed = False
        self.started = asyncio.Event()

    async def events(self) -> AsyncIterator[Json]:
        try:
            self.started.set()
            if self.hang:
                await asyncio.Event().wait()
            for item in self.items:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self.closed = True


def request(disconnect: asyncio.Event | None = None) -> Request:
    async def receive() -> dict[str, Any]:
        await (disconnect or asyncio.Event()).wait()
        return {"type": "http.disconnect"}

    return Request({"type": "http", "method": "POST", "headers": []}, receive)


def collect(chunks: list[Json]) -> Response:
    return JSONResponse({"texts": [c["t"] for c in chunks]})


async def body_of(response: Response) -> bytes:
    assert isinstance(response, StreamingResponse)
    return b"".join([part async for part in response.body_iterator])


def run(producer: Producer, stream: bool, **kwargs: Any) -> tuple[Response, bytes]:
    async def scenario() -> tuple[Response, bytes]:
        response = await respond(request(), producer.events(), stream=stream, collect=collect, **kwargs)
        if isinstance(response, StreamingResponse):
            return response, await body_of(response)
        return response, response.body

    return asyncio.run(scenario())


def test_ndjson_stream() -> None:
    producer = Producer({"t": "a"}, {"t": "b"})
    response, body = run(producer, True)
    assert response.media_type == "application/x-ndjson"
    assert body == b'{"t":"a"}\n{"t":"b"}\n' and producer.closed


def test_error_before_the_first_byte_keeps_its_status() -> None:
    response, body = run(Producer(InvalidRequest("bad option")), True)
    assert response.status_code == 400 and json.loads(body) == {"error": "bad option"}


def test_error_after_the_first_byte_is_a_last_line() -> None:
    producer = Producer({"t": "a"}, Canceled("request canceled"))
    response, body = run(producer, True)
    assert response.status_code == 200
    assert body.splitlines() == [b'{"t":"a"}', b'{"error":"request canceled"}'] and producer.closed


def test_in_band_error_object_is_an_error() -> None:
    _, body = run(Producer({"t": "a"}, {"error": "out of memory"}), True)
    assert body.splitlines()[-1] == b'{"error":"out of memory"}'


def test_collected_reply() -> None:
    response, body = run(Producer({"t": "a"}, {"t": "b"}), False)
    assert response.status_code == 200 and json.loads(body) == {"texts": ["a", "b"]}


def test_collected_reply_that_fails_after_the_first_object() -> None:
    response, body = run(Producer({"t": "a"}, Canceled("request canceled")), False)
    assert (response.status_code, json.loads(body)) == (499, {"error": "request canceled"})


def test_an_unexpected_exception_is_a_500() -> None:
    response, body = run(Producer(RuntimeError("a bug")), False)
    assert (response.status_code, json.loads(body)) == (500, {"error": "a bug"})


def test_no_object_at_all_is_a_499_or_the_given_reply() -> None:
    assert run(Producer(), True)[0].status_code == 499
    assert run(Producer(), True, empty=lambda: JSONResponse({}, status_code=204))[0].status_code == 204


def test_sse_ends_with_done_and_errors_in_openai_shape() -> None:
    _, body = run(Producer({"t": "a"}), True, encoder=OPENAI)
    assert body == b'data: {"t":"a"}\n\ndata: [DONE]\n\n'
    _, body = run(Producer({"t": "a"}, Canceled("request canceled")), True, encoder=OPENAI)
    assert body.endswith(b'"type":"canceled","param":null,"code":null}}\n\n') and b"[DONE]" not in body


def test_translate_maps_each_object_to_several() -> None:
    _, body = run(Producer({"t": "a"}), True, translate=lambda obj: [obj, obj])
    assert body == b'{"t":"a"}\n{"t":"a"}\n'


def test_client_that_leaves_before_the_first_byte_closes_the_producer() -> None:
    producer = Producer({"t": "never"}, hang=True)

    async def scenario() -> Response:
        gone = asyncio.Event()

        async def leave() -> None:
            await producer.started.wait()  # the producer is working (a prefill)
            gone.set()

        task = asyncio.ensure_future(leave())
        response = await respond(request(gone), producer.events(), stream=True, collect=collect)
        await task
        return response

    response = asyncio.run(scenario())
    assert response.status_code == 499 and producer.closed


def test_progress_stream_runs_a_blocking_producer_and_closes_it() -> None:
    closed = []

    def events() -> Iterator[Json]:
        try:
            yield {"status": "pulling"}
            yield {"status": "success"}
        finally:
            closed.append(True)

    async def scenario(stream: bool) -> tuple[Response, bytes]:
        response = await progress_response(request(), events(), stream)
        if isinstance(response, StreamingResponse):
            return response, await body_of(response)
        return response, response.body

    response, body = asyncio.run(scenario(True))
    assert body.splitlines() == [b'{"status":"pulling"}', b'{"status":"success"}'] and closed == [True]
    response, body = asyncio.run(scenario(False))
    assert json.loads(body) == {"status": "success"} and closed == [True, True]
    # Ollama's waitForStream sets a bare application/json before c.JSON, which then keeps it.
    assert response.headers["content-type"] == "application/json"
