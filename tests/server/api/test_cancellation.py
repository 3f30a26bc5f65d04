"""A request that does not finish never looks finished (issue 11, review finding 5).

A newer request with the same ``X-Llamita-Session`` supersedes the older one.  Before its first
byte the older one is a 499 with the reason; after it, the NDJSON stream ends with an
``{"error"}`` line, and ``/v1`` sends an error event with no ``[DONE]`` (the OpenAI SDK raises).
Before, it was a 200 with partial text and ``done: false``, or a stream that just stopped.

The older request cannot finish before the newer one arrives: a JSON schema grammar forbids the
end of the answer for thousands of tokens (or a greedy count goes on for hundreds), and the newer
request is sent only once the older one is in the engine (or has sent its first chunk).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest

from llamita.server.engine.request import SUPERSEDED

pytestmark = pytest.mark.model

MODEL = "smollm2:135m"
SESSION = "editor-1"
HEADERS = {"X-Llamita-Session": SESSION}
# Why the request stopped, as the engine's Done names it.
CUT_SHORT = {SUPERSEDED}
# No end of answer before ~3000 numbers (a few thousand tokens): only the supersede stops it.
ENDLESS = {"type": "array", "items": {"type": "integer"}, "minItems": 3000}
LONG = {"temperature": 0, "num_predict": 3000}
COUNT = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"  # greedy SmolLM2 counts on for hundreds of tokens


def endless_body(path: str, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "format": ENDLESS, "stream": stream, "options": LONG}
    if path == "/api/chat":
        return {**body, "messages": [{"role": "user", "content": "List numbers."}]}
    return {**body, "prompt": "List numbers."}


def engine_busy(server) -> bool:
    return any(runner.engine.active for runner in server.app.state.runners.loaded.values())


def wait_until_submitted(server) -> None:
    """Until the older request is in the engine, so the newer one arrives after it."""
    for _ in range(12000):  # polls engine state; the bound only stops a broken test
        if engine_busy(server):
            return
        time.sleep(0.01)
    raise AssertionError("the first request never reached the engine")


def supersede(server) -> None:
    """A newer request of the same session; it completes normally."""
    body = {"model": MODEL, "prompt": "hi", "stream": False, "options": {"temperature": 0, "num_predict": 2}}
    r = httpx.post(server.url + "/api/generate", json=body, headers=HEADERS, timeout=600)
    assert r.status_code == 200 and r.json()["done"] is True, r.text


@pytest.fixture
def sdk(server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="ollama", max_retries=0, timeout=600) as client:
        yield client


@pytest.mark.parametrize("path", ["/api/generate", "/api/chat"])
def test_superseded_non_stream_request_is_a_499(server, path: str) -> None:
    with ThreadPoolExecutor(1) as pool:
        older = pool.submit(
            httpx.post, server.url + path, json=endless_body(path, False), headers=HEADERS, timeout=600
        )
        wait_until_submitted(server)
        supersede(server)
        r = older.result()
    assert r.status_code == 499, r.text  # not a 200 with partial text and done: false
    assert r.json()["error"] in CUT_SHORT


@pytest.mark.parametrize("path", ["/api/generate", "/api/chat"])
def test_superseded_stream_ends_with_an_error_line(server, path: str) -> None:
    body = endless_body(path, True)
    with httpx.stream("POST", server.url + path, json=body, headers=HEADERS, timeout=600) as r:
        lines = r.iter_lines()
        assert json.loads(next(lines))["done"] is False
        supersede(server)
        rest = [json.loads(line) for line in lines]
    assert rest and rest[-1].keys() == {"error"} and rest[-1]["error"] in CUT_SHORT
    assert not any(chunk.get("done") for chunk in rest)


def test_superseded_openai_chat_is_a_499(server, sdk: openai.OpenAI) -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "numbers", "schema": ENDLESS}}
    with ThreadPoolExecutor(1) as pool:
        older = pool.submit(
            sdk.chat.completions.create,
            model=MODEL,
            messages=[{"role": "user", "content": "List numbers."}],
            response_format=schema,
            temperature=0,
            max_tokens=3000,
            extra_headers=HEADERS,
        )
        wait_until_submitted(server)
        supersede(server)
        with pytest.raises(openai.APIStatusError) as info:
            older.result()
    assert info.value.status_code == 499  # not a completion with finish_reason null
    assert info.value.body["type"] == "canceled" and info.value.body["message"] in CUT_SHORT


def test_superseded_openai_chat_stream_ends_with_an_error_event(server, sdk: openai.OpenAI) -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "numbers", "schema": ENDLESS}}
    stream = sdk.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "List numbers."}],
        response_format=schema,
        temperature=0,
        max_tokens=3000,
        stream=True,
        extra_headers=HEADERS,
    )
    with stream:
        chunks = iter(stream)
        assert next(chunks).choices[0].finish_reason is None
        supersede(server)
        with pytest.raises(openai.APIError) as info:  # the SDK raises on the error event
            for chunk in chunks:
                assert not (chunk.choices and chunk.choices[0].finish_reason)  # never a normal end
    assert info.value.message in CUT_SHORT


def test_superseded_openai_completion_stream_has_no_done(server) -> None:
    """Raw SSE: the error event (type ``canceled``) is the last one, and no ``[DONE]`` follows."""
    body = {"model": MODEL, "prompt": COUNT, "max_tokens": 3000, "temperature": 0, "stream": True}
    with httpx.stream("POST", server.url + "/v1/completions", json=body, headers=HEADERS, timeout=600) as r:
        events = (line.removeprefix("data: ") for line in r.iter_lines() if line)
        assert json.loads(next(events))["choices"][0]["finish_reason"] is None
        supersede(server)
        rest = list(events)
    assert "[DONE]" not in rest
    last = json.loads(rest[-1])
    assert last["error"]["type"] == "canceled" and last["error"]["message"] in CUT_SHORT
    assert not any(json.loads(e).get("choices", [{}])[0].get("finish_reason") for e in rest[:-1])


def test_superseded_openai_completion_is_a_499(server, sdk: openai.OpenAI) -> None:
    with ThreadPoolExecutor(1) as pool:
        older = pool.submit(
            sdk.completions.create,
            model=MODEL,
            prompt=COUNT,
            temperature=0,
            max_tokens=3000,
            extra_headers=HEADERS,
        )
        wait_until_submitted(server)
        supersede(server)
        with pytest.raises(openai.APIStatusError) as info:
            older.result()
    assert info.value.status_code == 499 and info.value.body["type"] == "canceled"


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_openai_client_that_hangs_up_before_the_first_byte_stops_generation(server, path: str) -> None:
    """It used to generate on (up to ``max_tokens``) for nobody."""
    body: dict[str, Any] = {"model": MODEL, "max_tokens": 3000, "temperature": 0}
    if path == "/v1/chat/completions":
        schema = {"type": "json_schema", "json_schema": {"name": "numbers", "schema": ENDLESS}}
        body |= {"messages": [{"role": "user", "content": "List numbers."}], "response_format": schema}
    else:
        body["prompt"] = COUNT
    payload = json.dumps(body).encode()
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        sock.sendall(f"{head}Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
        wait_until_submitted(server)
    engine = next(iter(server.app.state.runners.loaded.values())).engine
    for _ in range(12000):  # polls engine state; the bound only stops a broken test
        if not engine_busy(server):
            break
        time.sleep(0.01)
    assert not engine_busy(server) and engine.stats().aborted >= 1
