"""The CLI's HTTP client against a mock transport: addresses, auth, errors and NDJSON streams."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from pathlib import Path

import certifi
import httpx
import pytest

from llamita.server.client import Client, ResponseError, ServerUnreachable, auth_headers, tls_verify

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, **kwargs: object) -> Client:
    return Client(transport=httpx.MockTransport(handler), **kwargs)  # type: ignore[arg-type]


def ndjson(*events: dict[str, object]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def test_address_comes_from_ollama_host_and_listen_only_hosts_become_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"version": "1.2.3"})

    assert client(handler).version() == "1.2.3"
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:4321")
    with client(handler) as c:
        c.version()
    assert seen == ["http://127.0.0.1:11434/api/version", "http://127.0.0.1:4321/api/version"]


def test_api_key_is_sent_as_a_bearer_token(monkeypatch: pytest.MonkeyPatch) -> None:
    assert auth_headers() == {}
    monkeypatch.setenv("LLAMITA_API_KEY", "k1")
    assert auth_headers() == {"Authorization": "Bearer k1"}
    assert auth_headers("") == {}
    headers: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        headers.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"models": []})

    client(handler).list()
    client(handler, api_key="k2").list()
    assert headers == ["Bearer k1", "Bearer k2"]


def test_tls_ca_is_used_to_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    assert tls_verify() is True
    monkeypatch.setenv("LLAMITA_TLS_CA", certifi.where())
    assert isinstance(tls_verify(), ssl.SSLContext)


def test_error_bodies_become_response_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/show":
            return httpx.Response(404, json={"error": "model 'x' not found"})
        return httpx.Response(401, json={"error": "unauthorized"})

    with pytest.raises(ResponseError, match=r"^model 'x' not found$") as exc:
        client(handler).show("x")
    assert exc.value.status == 404
    with pytest.raises(ResponseError, match=r"set LLAMITA_API_KEY\)$") as exc:
        client(handler).list()
    assert exc.value.status == 401


def test_a_non_json_error_keeps_its_text() -> None:
    with pytest.raises(ResponseError, match=r"^bad gateway$"):
        client(lambda request: httpx.Response(502, text="bad gateway")).ps()


def test_nothing_listening_is_server_unreachable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ServerUnreachable):
        client(handler).heartbeat()
    with pytest.raises(ServerUnreachable):
        list(client(handler).chat({"model": "m"}))


def test_streams_yield_events_and_raise_an_error_event() -> None:
    bodies: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        if request.url.path == "/api/pull":
            return httpx.Response(200, content=ndjson({"status": "pulling"}, {"error": "manifest unknown"}))
        return httpx.Response(200, content=ndjson({"response": "a"}, {}, {"response": "b", "done": True}))

    c = client(handler)
    assert list(c.generate({"model": "m", "prompt": "p"})) == [
        {"response": "a"},
        {},
        {"response": "b", "done": True},
    ]
    events = c.pull("m", insecure=True)
    assert next(events) == {"status": "pulling"}
    with pytest.raises(ResponseError, match=r"^manifest unknown$"):
        next(events)
    assert bodies == [{"model": "m", "prompt": "p"}, {"model": "m", "insecure": True, "stream": True}]


def test_a_stream_that_fails_up_front_reads_the_error_body() -> None:
    handler: Handler = lambda request: httpx.Response(400, json={"error": "invalid model name"})  # noqa: E731
    with pytest.raises(ResponseError, match=r"^invalid model name$"):
        list(client(handler).create({"model": "bad/name"}))


def test_show_session_sends_only_what_is_set() -> None:
    bodies: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={})

    c = client(handler)
    c.show_session("m", "", {})
    c.show_session("m", "be brief", {"seed": 1})
    assert bodies == [{"model": "m"}, {"model": "m", "system": "be brief", "options": {"seed": 1}}]


def test_blobs_are_uploaded_only_when_missing(tmp_path: Path) -> None:
    blob = tmp_path / "weights.gguf"
    blob.write_bytes(b"x" * 10)
    have: set[str] = set()
    uploads: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        digest = request.url.path.rsplit("/", 1)[-1]
        if request.method == "HEAD":
            return httpx.Response(200 if digest in have else 404)
        uploads.append(request.read())
        have.add(digest)
        return httpx.Response(201)

    c = client(handler)
    progress: list[int] = []
    assert not c.has_blob("sha256:1")
    c.create_blob("sha256:1", blob, progress.append)
    c.create_blob("sha256:1", blob, progress.append)
    assert uploads == [b"x" * 10]
    assert progress == [10, 10]
