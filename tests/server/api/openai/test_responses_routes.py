"""The ``/v1/responses`` handlers over a scripted runtime: framing, storing, errors before and after
the first byte."""

from __future__ import annotations

import json
from typing import Any

import pytest
from nativechunks import chat_chunk, chat_done, native_call
from scriptedruntime import ScriptedRuntime
from starlette.applications import Starlette
from starlette.testclient import TestClient

from llamita.server.api.errors import APIError
from llamita.server.api.openai import routes as openai

BODY = {"model": "m", "input": "hi"}


@pytest.fixture
def runtime() -> ScriptedRuntime:
    return ScriptedRuntime()


@pytest.fixture
def client(runtime: ScriptedRuntime) -> TestClient:
    app = Starlette(routes=openai.ROUTES)
    app.state.runtime = runtime
    return TestClient(app)


def sse(text: str) -> list[dict[str, Any]]:
    """The events of a Responses stream, checking each ``event:`` line names its data's type."""
    assert text.endswith("\n\n")
    events = []
    for block in text[:-2].split("\n\n"):
        head, data = block.split("\n")
        event = json.loads(data.removeprefix("data: "))
        assert head == f"event: {event['type']}"
        events.append(event)
    return events


def test_create_stores_and_retrieves(client: TestClient, runtime: ScriptedRuntime) -> None:
    runtime.script = [chat_chunk("Hi"), chat_done()]
    r = client.post("/v1/responses", json={**BODY, "instructions": "Be kind.", "max_output_tokens": 5})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    reply = r.json()
    assert reply["output"][0]["content"][0]["text"] == "Hi" and reply["status"] == "completed"
    (request,) = runtime.requests
    assert request.messages[0] == {"role": "system", "content": "Be kind."}
    assert request.options == {"temperature": 1.0, "num_predict": 5}
    assert client.get(f"/v1/responses/{reply['id']}").json() == reply

    runtime.script = [chat_chunk(tool_calls=[native_call("f", {"a": 1})]), chat_done()]
    r = client.post(
        "/v1/responses", json={"model": "m", "input": "more", "previous_response_id": reply["id"]}
    )
    assert runtime.requests[1].messages == [  # the instructions are not inherited
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hi"},
        {"role": "user", "content": "more"},
    ]
    runtime.script = [chat_done()]
    answer = {"type": "function_call_output", "call_id": "call_abc", "output": "2"}
    client.post(
        "/v1/responses", json={"model": "m", "input": [answer], "previous_response_id": r.json()["id"]}
    )
    assert runtime.requests[2].messages[-2:] == [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "call_abc", "function": {"name": "f", "arguments": {"a": 1}}}],
        },
        {"role": "tool", "content": "2", "tool_call_id": "call_abc", "tool_name": "f"},
    ]


def test_stream_is_stored_when_it_finishes(client: TestClient, runtime: ScriptedRuntime) -> None:
    runtime.script = [chat_chunk("Hi"), chat_done("length")]
    r = client.post("/v1/responses", json={**BODY, "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse(r.text)
    assert events[-1]["type"] == "response.incomplete" and runtime.closed
    final = events[-1]["response"]
    assert client.get(f"/v1/responses/{final['id']}").json() == final


def test_store_false_keeps_nothing(client: TestClient, runtime: ScriptedRuntime) -> None:
    runtime.script = [chat_chunk("Hi"), chat_done()]
    reply = client.post("/v1/responses", json={**BODY, "store": False}).json()
    assert reply["store"] is False
    r = client.get(f"/v1/responses/{reply['id']}")
    assert (
        r.status_code == 404
        and r.json()["error"]["message"] == f"Response with id '{reply['id']}' not found."
    )
    r = client.post("/v1/responses", json={**BODY, "previous_response_id": reply["id"]})
    assert r.status_code == 404 and r.json() == {
        "error": {
            "message": f"Previous response with id '{reply['id']}' not found.",
            "type": "invalid_request_error",
            "param": "previous_response_id",
            "code": "previous_response_not_found",
        }
    }
    assert len(runtime.requests) == 1  # nothing ran for the unknown id


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_an_error_before_the_first_chunk_keeps_its_status(
    client: TestClient, runtime: ScriptedRuntime, stream: bool
) -> None:
    runtime.script = [APIError("model 'nope' not found", 404)]
    r = client.post("/v1/responses", json={**BODY, "stream": stream})
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


def test_bad_bodies_are_400(client: TestClient) -> None:
    r = client.post("/v1/responses", json={"model": "m", "input": 3})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert client.post("/v1/responses", content=b"{").status_code == 400


def test_an_error_mid_stream_is_response_failed(client: TestClient, runtime: ScriptedRuntime) -> None:
    runtime.script = [chat_chunk("partial"), RuntimeError("runner crashed")]
    events = sse(client.post("/v1/responses", json={**BODY, "stream": True}).text)
    assert events[-1]["type"] == "response.failed" and runtime.closed
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"] == {
        "code": "server_error",
        "message": "runner crashed",
    }
    assert failed["id"] == events[0]["response"]["id"]
    assert client.get(f"/v1/responses/{failed['id']}").status_code == 404  # a failed response is not kept


def test_cancel_mid_stream(client: TestClient, runtime: ScriptedRuntime) -> None:
    runtime.script = [chat_chunk("a"), APIError("request canceled", 499)]
    events = sse(client.post("/v1/responses", json={**BODY, "stream": True}).text)
    assert events[-1]["response"]["error"]["code"] == "canceled"


def test_an_empty_reply_is_a_500(client: TestClient, runtime: ScriptedRuntime) -> None:
    r = client.post("/v1/responses", json=BODY)
    assert r.status_code == 500 and r.json()["error"]["message"] == "the model returned no response"
