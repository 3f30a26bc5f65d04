"""The ``/v1`` handlers over a scripted runtime (``app.state.runtime``): framing, errors, closing."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from typing import Any

import pytest
from nativechunks import (
    CREATED,
    DEFAULT_OPTIONS,
    EMBEDDINGS,
    MANIFESTS,
    USER_HI,
    FakeManifest,
    chat_chunk,
    chat_done,
    gen_chunk,
    gen_done,
    native_call,
)
from scriptedruntime import ScriptedRuntime
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.testclient import TestClient

from llamita.server.api.errors import APIError
from llamita.server.api.openai import response as openai_response
from llamita.server.api.openai import routes as openai
from llamita.server.api.request import chat_request, embed_request
from llamita.server.api.stream import respond
from llamita.server.store.names import Name

# --- handlers over scripted native chunks ---------------------------------------------------


class FakeStore:
    def __init__(self, manifests: list[FakeManifest]) -> None:
        self.manifests = manifests

    def iter_manifests(self) -> list[FakeManifest]:
        return list(self.manifests)

    def get(self, name: Name) -> FakeManifest | None:
        return next((m for m in self.manifests if m.name.key == name.key), None)


@pytest.fixture
def native() -> ScriptedRuntime:
    return ScriptedRuntime()


@pytest.fixture
def client(native: ScriptedRuntime) -> TestClient:
    app = Starlette(routes=openai.ROUTES)
    app.state.store = FakeStore(MANIFESTS)
    app.state.runtime = native
    return TestClient(app)


def sse_events(text: str) -> list[Any]:
    """Split an SSE body, checking the framing: ``data: <json>`` blocks separated by a blank line."""
    assert text.endswith("\n\n")
    events: list[Any] = []
    for block in text[:-2].split("\n\n"):
        assert block.startswith("data: ") and "\n" not in block
        payload = block.removeprefix("data: ")
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def test_chat_non_stream(client: TestClient, native: ScriptedRuntime) -> None:
    native.script = [chat_chunk("Hi"), chat_chunk(" there"), chat_done()]
    r = client.post("/v1/chat/completions", json={"model": "m", "messages": USER_HI, "max_tokens": 5})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["id"].startswith("chatcmpl-") and body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hi there"}
    assert body["usage"]["total_tokens"] == 10
    assert native.requests == [
        chat_request(
            {
                "model": "m",
                "messages": USER_HI,
                "options": {**DEFAULT_OPTIONS, "num_predict": 5},
                "stream": False,
            }
        )
    ]


def test_chat_stream_with_usage(client: TestClient, native: ScriptedRuntime) -> None:
    native.script = [chat_chunk("Hi"), chat_chunk("!"), chat_done()]
    body = {"model": "m", "messages": USER_HI, "stream": True, "stream_options": {"include_usage": True}}
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert [c["choices"][0]["delta"] for c in chunks[:3]] == [
        {"role": "assistant", "content": "Hi"},
        {"content": "!"},
        {},
    ]
    assert chunks[2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[3]["choices"] == [] and chunks[3]["usage"]["completion_tokens"] == 3
    assert len({c["id"] for c in chunks}) == 1 and {c["created"] for c in chunks} == {CREATED}
    assert native.closed


def test_chat_stream_tool_calls(client: TestClient, native: ScriptedRuntime) -> None:
    native.script = [chat_chunk(tool_calls=[native_call("weather", {"city": "Oslo"})]), chat_done()]
    r = client.post(
        "/v1/chat/completions",
        json={"model": "m", "messages": USER_HI, "stream": True, "tools": [{"type": "function"}]},
    )
    chunks = sse_events(r.text)[:-1]
    (call,) = chunks[0]["choices"][0]["delta"]["tool_calls"]
    assert call["function"] == {"name": "weather", "arguments": '{"city":"Oslo"}'} and call["index"] == 0
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert native.requests[0].tools == [{"type": "function"}]


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_error_before_first_chunk_keeps_its_status(
    client: TestClient, native: ScriptedRuntime, stream: bool
) -> None:
    native.script = [APIError("model 'nope' not found", 404)]
    r = client.post("/v1/chat/completions", json={"model": "nope", "messages": USER_HI, "stream": stream})
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"
    assert r.json() == openai_response.openai_error("model 'nope' not found", 404)


def test_error_mid_stream_is_a_final_error_event(client: TestClient, native: ScriptedRuntime) -> None:
    native.script = [chat_chunk("partial"), RuntimeError("runner crashed")]
    r = client.post("/v1/chat/completions", json={"model": "m", "messages": USER_HI, "stream": True})
    assert r.status_code == 200
    events = sse_events(r.text)
    assert events[0]["choices"][0]["delta"]["content"] == "partial"
    assert events[1:] == [openai_response.openai_error("runner crashed", 500)]  # no [DONE] after an error
    assert native.closed


def test_in_band_native_error_mid_stream(client: TestClient, native: ScriptedRuntime) -> None:
    native.script = [gen_chunk("a"), {"error": "out of memory"}]
    r = client.post("/v1/completions", json={"model": "m", "prompt": "x", "stream": True})
    assert sse_events(r.text)[-1] == openai_response.openai_error("out of memory", 500)


def test_error_after_first_chunk_without_stream(client: TestClient, native: ScriptedRuntime) -> None:
    native.script = [chat_chunk("partial"), APIError("request canceled", 499)]
    r = client.post("/v1/chat/completions", json={"model": "m", "messages": USER_HI})
    assert r.status_code == 499 and r.json()["error"]["type"] == "canceled"


def test_cancel_mid_stream_is_a_canceled_event_without_done(
    client: TestClient, native: ScriptedRuntime
) -> None:
    native.script = [gen_chunk("a"), APIError("request canceled", 499)]
    r = client.post("/v1/completions", json={"model": "m", "prompt": "x", "stream": True})
    assert sse_events(r.text)[-1] == openai_response.openai_error("request canceled", 499)  # no [DONE]


@pytest.mark.parametrize(
    ("path", "payload", "message"),
    [
        pytest.param(
            "/v1/chat/completions", {"model": "m", "messages": []}, "[] is too short - 'messages'", id="chat"
        ),
        pytest.param(
            "/v1/completions",
            {"model": "m", "prompt": ["a"]},
            "invalid type for 'prompt' field: []interface {}",
            id="completion",
        ),
        pytest.param("/v1/embeddings", {"model": "m"}, "invalid input", id="embeddings"),
        pytest.param(
            "/v1/embeddings",
            {"model": "m", "input": "x", "encoding_format": "int8"},
            "Invalid value for 'encoding_format' = int8. Supported values: ['float', 'base64'].",
            id="encoding",
        ),
    ],
)
def test_request_errors_never_reach_native(
    client: TestClient, native: ScriptedRuntime, path: str, payload: dict[str, Any], message: str
) -> None:
    r = client.post(path, json=payload)
    assert (r.status_code, r.json()) == (400, openai_response.openai_error(message, 400))
    assert native.requests == []


def test_missing_body(client: TestClient) -> None:
    r = client.post("/v1/chat/completions", content=b"")
    assert (r.status_code, r.json()["error"]["message"]) == (400, "missing request body")


def test_completions_forward_suffix_for_fim(client: TestClient, native: ScriptedRuntime) -> None:
    native.script = [gen_chunk("a + b"), gen_done()]
    r = client.post(
        "/v1/completions",
        json={"model": "m", "prompt": "def add(a, b):\n    return ", "suffix": "\n", "max_tokens": 8},
    )
    assert r.json()["choices"] == [{"text": "a + b", "index": 0, "finish_reason": "stop"}]
    assert r.json()["id"].startswith("cmpl-")
    (sent,) = native.requests
    assert (sent.prompt, sent.suffix, sent.options["num_predict"]) == (
        "def add(a, b):\n    return ",
        "\n",
        8,
    )


def test_completions_stream_with_usage(client: TestClient, native: ScriptedRuntime) -> None:
    native.script = [gen_chunk("x"), gen_chunk("y"), gen_done("length")]
    r = client.post(
        "/v1/completions",
        json={"model": "m", "prompt": "p", "stream": True, "stream_options": {"include_usage": True}},
    )
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    assert [(e["choices"][0]["text"], e["choices"][0]["finish_reason"]) for e in events[:3]] == [
        ("x", None),
        ("y", None),
        ("", "length"),
    ]
    assert events[3]["choices"] == [] and events[3]["usage"] == {
        "prompt_tokens": 4,
        "completion_tokens": 2,
        "total_tokens": 6,
    }


@pytest.mark.parametrize("encoding", [None, "float", "base64"], ids=["default", "float", "base64"])
def test_embeddings(client: TestClient, native: ScriptedRuntime, encoding: str | None) -> None:
    payload: dict[str, Any] = {"model": "e", "input": ["a", "b"], "dimensions": 2}
    if encoding:
        payload["encoding_format"] = encoding
    r = client.post("/v1/embeddings", json=payload)
    body = r.json()
    vectors = [d["embedding"] for d in body["data"]]
    if encoding == "base64":
        vectors = [list(struct.unpack("<2f", base64.b64decode(v))) for v in vectors]
    assert vectors == EMBEDDINGS["embeddings"]
    assert (body["model"], body["usage"]) == ("e", {"prompt_tokens": 6, "total_tokens": 6})
    assert native.requests == [embed_request({"model": "e", "input": ["a", "b"], "dimensions": 2})]


def test_embedding_native_error(client: TestClient, native: ScriptedRuntime) -> None:
    native.embed_reply = APIError('model "e" not found, try pulling it first', 404)
    r = client.post("/v1/embeddings", json={"model": "e", "input": "a"})
    assert (r.status_code, r.json()["error"]["type"]) == (404, "not_found_error")


def test_list_models(client: TestClient) -> None:
    r = client.get("/v1/models")
    assert r.status_code == 200
    assert [m["id"] for m in r.json()["data"]] == ["hf.co/someone/coder:q4", "team/new:latest", "old:1"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(
            "old:1", {"id": "old:1", "object": "model", "created": 100, "owned_by": "library"}, id="colon"
        ),
        pytest.param(
            "OLD:1", {"id": "OLD:1", "object": "model", "created": 100, "owned_by": "library"}, id="any-case"
        ),
        pytest.param(
            "team/new",
            {"id": "team/new", "object": "model", "created": 200, "owned_by": "team"},
            id="namespace",
        ),
        pytest.param(
            "hf.co/someone/coder:q4",
            {"id": "hf.co/someone/coder:q4", "object": "model", "created": 300, "owned_by": "someone"},
            id="host",
        ),
    ],
)
def test_retrieve_model(client: TestClient, path: str, expected: dict[str, Any]) -> None:
    r = client.get(f"/v1/models/{path}")
    assert (r.status_code, r.json()) == (200, expected)


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        pytest.param("nope", 404, "model 'nope:latest' not found", id="unknown"),
        pytest.param("a/b/c/d/e", 400, "invalid model name", id="invalid"),
    ],
)
def test_retrieve_model_errors(client: TestClient, path: str, status: int, message: str) -> None:
    r = client.get(f"/v1/models/{path}")
    assert (r.status_code, r.json()) == (status, openai_response.openai_error(message, status))


def test_closing_a_stream_stops_native_generation(native: ScriptedRuntime) -> None:
    """A client that hangs up closes the SSE body, which must close the runtime's iterator."""
    native.script = [chat_chunk("a"), chat_chunk("b"), chat_done()]

    async def first_event_then_hang_up() -> tuple[bytes, bool]:
        async def receive() -> dict[str, Any]:
            await asyncio.Event().wait()  # the client never hangs up before the first byte
            return {}

        request = Request({"type": "http", "method": "POST", "headers": []}, receive)
        state = openai_response.ChatStream("chatcmpl-1")
        response = await respond(
            request,
            native.chat(chat_request({})),
            stream=True,
            encoder=openai.OPENAI,
            translate=lambda c: openai_response.to_chat_chunks(c, state),
            collect=lambda chunks: JSONResponse({}),
        )
        body = response.body_iterator
        event = await anext(body)
        await body.aclose()
        return event, native.closed  # checked before asyncio.run closes leftover generators

    event, closed = asyncio.run(first_event_then_hang_up())
    assert event.startswith(b'data: {"id":"chatcmpl-1"') and closed
