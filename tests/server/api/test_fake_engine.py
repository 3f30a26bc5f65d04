"""The request pipeline over a fake engine (no llama.cpp weights): route → runtime → engine.

The store holds a tiny generated GGUF (real metadata, template and capabilities), and the
runners load :class:`fakeengine.FakeEngine` in its place.  The disconnect tests drive the ASGI
app directly: the client's ``http.disconnect`` is sent only once the engine has the request,
and the engine's request never ends by itself, so nothing depends on timing.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from fakeengine import FakeEngines
from starlette.testclient import TestClient

from ggufgen import write_tiny_gguf
from llamita.server.api import build_app
from llamita.server.engine import Priority
from llamita.server.model.create import import_gguf
from llamita.server.runtime.runners import Runners
from llamita.server.store.blobs import Store

MODEL = "tiny"
USER_HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def store_with_model(store: Store, tmp_path: Path) -> Store:
    import_gguf(store, MODEL, write_tiny_gguf(tmp_path / "tiny.gguf"))
    return store


@pytest.fixture
def engines() -> FakeEngines:
    return FakeEngines()


@pytest.fixture
def client(store_with_model: Store, engines: FakeEngines) -> TestClient:
    app = build_app(store_with_model, listen_host="127.0.0.1", runners=Runners(engines))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


def test_generate_runs_the_fake_engine(client: TestClient, engines: FakeEngines) -> None:
    r = client.post("/api/generate", json={"model": MODEL, "prompt": "x", "raw": True, "stream": False})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["response"], body["done"], body["done_reason"]) == ("Hello world", True, "stop")
    (request,) = engines.requests
    assert request.prompt == [1, ord("x") + 2] and "context" not in body  # raw: no context


def test_generate_stream_is_ndjson(client: TestClient) -> None:
    r = client.post("/api/generate", json={"model": MODEL, "prompt": "x", "raw": True})
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [c["response"] for c in lines] == ["Hello", " world", ""] and lines[-1]["done"] is True


def test_chat_non_stream(client: TestClient, engines: FakeEngines) -> None:
    r = client.post("/api/chat", json={"model": MODEL, "messages": USER_HI, "stream": False})
    assert r.status_code == 200, r.text
    assert r.json()["message"] == {"role": "assistant", "content": "Hello world"}
    assert engines.requests[0].session is None


def test_session_header_reaches_the_engine(client: TestClient, engines: FakeEngines) -> None:
    body = {"model": MODEL, "prompt": "x", "stream": False}
    client.post("/api/generate", json=body, headers={"X-Llamita-Session": "editor-1"})
    assert engines.requests[0].session == "editor-1"


def test_num_predict_cuts_the_answer(client: TestClient) -> None:
    body = {"model": MODEL, "prompt": "x", "stream": False, "options": {"num_predict": 1}}
    r = client.post("/api/generate", json=body)
    assert (r.json()["response"], r.json()["done_reason"]) == ("Hello", "length")


def test_openai_completion(client: TestClient) -> None:
    r = client.post("/v1/completions", json={"model": MODEL, "prompt": "x", "max_tokens": 5})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["text"] == "Hello world"


def test_openai_chat_stream(client: TestClient) -> None:
    r = client.post("/v1/chat/completions", json={"model": MODEL, "messages": USER_HI, "stream": True})
    events = [line.removeprefix("data: ") for line in r.text.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1] if e)
    assert text == "Hello world"


def test_unknown_model_is_a_404(client: TestClient, engines: FakeEngines) -> None:
    r = client.post("/api/generate", json={"model": "nope", "prompt": "x"})
    assert (r.status_code, r.json()) == (404, {"error": "model 'nope' not found"})
    assert engines.made == []


def test_embed(client: TestClient) -> None:
    r = client.post("/api/embed", json={"model": MODEL, "input": ["ab", "abcd"]})
    assert r.status_code == 200, r.text
    assert r.json()["prompt_eval_count"] == 2 + 3 + 5 - 2  # BOS plus one token per character


def test_ps_lists_the_loaded_fake(client: TestClient) -> None:
    client.post("/api/generate", json={"model": MODEL, "prompt": "x", "stream": False})
    (entry,) = client.get("/api/ps").json()["models"]
    assert entry["name"] == "tiny:latest" and entry["healthy"] is True


# ---- a client that leaves during the prefill -------------------------------------------------
DISCONNECT_CASES = [
    pytest.param("/v1/completions", {"prompt": "x", "stream": True}, id="v1-completions-stream"),
    pytest.param("/v1/completions", {"prompt": "x"}, id="v1-completions"),
    pytest.param("/v1/chat/completions", {"messages": USER_HI}, id="v1-chat"),
    pytest.param("/v1/chat/completions", {"messages": USER_HI, "stream": True}, id="v1-chat-stream"),
    pytest.param("/api/generate", {"prompt": "x"}, id="native-generate"),
    pytest.param("/api/chat", {"messages": USER_HI, "stream": False}, id="native-chat"),
]


def call_asgi(app: Any, path: str, payload: dict[str, Any], leave: Any) -> list[dict[str, Any]]:
    """Run one request through ``app``; the client disconnects once ``leave(sent)`` is true."""
    body = json.dumps({"model": MODEL, **payload}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 11434),
    }
    sent: list[dict[str, Any]] = []

    async def scenario() -> None:
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            while not leave(sent):
                await asyncio.sleep(0)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await asyncio.wait_for(app(scope, receive, send), timeout=60)  # a bound, not a sync
        runners = app.state.runners
        assert [r.refcount for r in runners.loaded.values()] == [0]  # the runner is idle again
        await runners.close()

    asyncio.run(scenario())
    return sent


@pytest.mark.parametrize(("path", "payload"), DISCONNECT_CASES)
def test_disconnect_during_prefill_frees_the_engine(
    store_with_model: Store, path: str, payload: dict[str, Any]
) -> None:
    engines = FakeEngines(hang=True)
    app = build_app(store_with_model, listen_host="127.0.0.1", runners=Runners(engines))
    # The client leaves once the engine holds the request (it would never answer).
    sent = call_asgi(app, path, payload, lambda sent: engines.started.is_set())
    (request,) = engines.requests
    assert request.aborted  # the engine was told: its sequence is free for the next request
    assert engines.made[0].stats().running == 0 and engines.made[0].closed
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 499  # nobody reads it; never a 200 with a short answer


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        pytest.param("/v1/completions", {"prompt": "x", "stream": True}, id="v1-completions"),
        pytest.param("/v1/chat/completions", {"messages": USER_HI, "stream": True}, id="v1-chat"),
        pytest.param("/api/generate", {"prompt": "x"}, id="native-generate"),
    ],
)
def test_disconnect_after_the_first_byte_frees_the_engine(
    store_with_model: Store, path: str, payload: dict[str, Any]
) -> None:
    engines = FakeEngines(hang_after=1)
    app = build_app(store_with_model, listen_host="127.0.0.1", runners=Runners(engines))

    def first_text_sent(sent: list[dict[str, Any]]) -> bool:
        return any(m["type"] == "http.response.body" and b"Hello" in m.get("body", b"") for m in sent)

    sent = call_asgi(app, path, payload, first_text_sent)
    (request,) = engines.requests
    assert request.aborted and engines.made[0].stats().running == 0
    assert b" world" not in b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_debug_render_only_loads_no_model(client: TestClient, engines: FakeEngines) -> None:
    body = {"model": MODEL, "prompt": "x", "system": "Be brief.", "_debug_render_only": True}
    r = client.post("/api/generate", json=body)
    info = r.json()["_debug_info"]
    assert "x" in info["rendered_template"] and info["image_count"] == 0
    r = client.post("/api/chat", json={"model": MODEL, "messages": USER_HI, "_debug_render_only": True})
    assert "hi" in r.json()["_debug_info"]["rendered_template"] and engines.made == []


@pytest.mark.parametrize("path", ["/api/generate", "/api/chat", "/v1/chat/completions", "/v1/completions"])
def test_the_priority_header_reaches_the_engine_and_a_bad_one_is_a_400(
    client: TestClient, engines: FakeEngines, path: str
) -> None:
    body: dict[str, Any] = {"model": MODEL, "stream": False}
    body.update({"messages": USER_HI} if "chat" in path else {"prompt": "x"})
    r = client.post(path, json=body, headers={"X-Llamita-Priority": "Batch"})
    assert r.status_code == 200, r.text
    assert engines.requests[-1].priority == Priority.BATCH
    r = client.post(path, json=body, headers={"X-Llamita-Priority": "urgent"})
    assert r.status_code == 400 and "X-Llamita-Priority must be one of interactive, normal, batch" in r.text
    assert len(engines.requests) == 1  # refused before it reached the engine
