"""The ``/v1/messages`` handlers over a scripted runtime: framing and errors on every side of the
first byte (what a real model cannot be made to do on cue: fail mid-stream, be superseded)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from nativechunks import USER_HI, chat_chunk, chat_done
from scriptedruntime import ScriptedRuntime
from starlette.applications import Starlette
from starlette.testclient import TestClient

from llamita.server.api.anthropic import routes
from llamita.server.api.anthropic.response import anthropic_error
from llamita.server.api.errors import APIError
from llamita.server.engine import QueueFull
from llamita.server.runtime.errors import Canceled, ModelMissing

BODY = {"model": "m", "max_tokens": 8, "messages": USER_HI}


@pytest.fixture
def runtime() -> ScriptedRuntime:
    return ScriptedRuntime()


@pytest.fixture
def client(runtime: ScriptedRuntime) -> TestClient:
    app = Starlette(routes=routes.ROUTES)
    app.state.runtime = runtime
    return TestClient(app)


def sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    """``(event, data)`` pairs, checking Anthropic's framing: ``event:`` and ``data:`` lines."""
    assert text.endswith("\n\n")
    out = []
    for frame in text[:-2].split("\n\n"):
        name, data = frame.split("\n")
        out.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
        assert out[-1][0] == out[-1][1]["type"]
    return out


def test_request_reaches_the_runtime_as_a_native_chat(client: TestClient, runtime: ScriptedRuntime) -> None:
    runtime.script = [chat_chunk("Hi"), chat_done()]
    r = client.post("/v1/messages?beta=true", json={**BODY, "tool_choice": {"type": "none"}})
    assert r.status_code == 200 and r.json()["content"] == [{"type": "text", "text": "Hi"}]
    (req,) = runtime.requests
    assert req.messages == USER_HI and req.options == {"num_predict": 8}


def test_error_before_the_first_byte(client: TestClient, runtime: ScriptedRuntime) -> None:
    runtime.script = [ModelMissing("model 'm' not found")]
    r = client.post("/v1/messages", json={**BODY, "stream": True})
    assert (r.status_code, r.json()) == (404, anthropic_error("model 'm' not found", 404))


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [(QueueFull(), 529, "overloaded_error"), (Canceled("superseded"), 499, "canceled")],
)
def test_refusals_keep_their_status(
    client: TestClient, runtime: ScriptedRuntime, error: Exception, status: int, kind: str
) -> None:
    runtime.script = [error]
    r = client.post("/v1/messages", json=BODY)
    assert r.status_code == status and r.json()["error"]["type"] == kind


def test_error_after_the_first_byte_is_an_error_event_with_no_message_stop(
    client: TestClient, runtime: ScriptedRuntime
) -> None:
    runtime.script = [chat_chunk("partial"), APIError("request canceled", 499)]
    r = client.post("/v1/messages", json={**BODY, "stream": True})
    assert r.status_code == 200
    events = sse(r.text)
    assert [name for name, _ in events][:3] == ["message_start", "ping", "content_block_start"]
    assert events[-1] == ("error", anthropic_error("request canceled", 499))
    assert "message_stop" not in [name for name, _ in events] and runtime.closed


def test_bad_body_is_an_invalid_request_error(client: TestClient) -> None:
    r = client.post("/v1/messages", content=b"{nope")
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = client.post("/v1/messages/count_tokens", json={"model": "m", "messages": "hi"})
    assert r.json() == anthropic_error("messages: Input should be a list", 400)
