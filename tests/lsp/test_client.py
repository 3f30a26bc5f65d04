"""The editor side's HTTP client: headers, errors, streaming, TLS, and what /api/show tells."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import certifi
import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from llamita.lsp.client import (
    SESSION_HEADER,
    ModelInfo,
    ModelServerError,
    OllamaClient,
    ResponseError,
    ServerUnreachable,
    tls_verify,
)


@pytest.mark.asyncio
async def test_generate_sends_session_and_key_and_never_streams() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"response": "ok", "done": True})

    client = OllamaClient("http://box:11434", api_key="secret", transport=httpx.MockTransport(handler))
    assert (await client.generate({"model": "m", "stream": True}, session="s1"))["response"] == "ok"
    await client.chat({"model": "m"})
    await client.aclose()
    generate, chat = seen
    assert generate.headers[SESSION_HEADER] == "s1" and generate.headers["authorization"] == "Bearer secret"
    assert b'"stream":false' in generate.content.replace(b" ", b"")
    assert SESSION_HEADER.lower() not in {k.lower() for k in chat.headers}


@pytest.mark.asyncio
async def test_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/show":
            return httpx.Response(404, json={"error": "model 'x' not found"})
        if request.url.path == "/api/chat":
            return httpx.Response(500, text="boom")
        return httpx.Response(200, text="not json")

    client = OllamaClient("http://box", transport=httpx.MockTransport(handler))
    with pytest.raises(ResponseError) as err:
        await client.show("x")
    assert (err.value.status, err.value.message) == (404, "model 'x' not found")
    with pytest.raises(ResponseError, match="boom"):
        await client.chat({})
    with pytest.raises(ModelServerError, match="invalid JSON"):
        await client.generate({})
    await client.aclose()


@pytest.mark.asyncio
async def test_connection_refused_is_unreachable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = OllamaClient("http://box", transport=httpx.MockTransport(handler))
    with pytest.raises(ServerUnreachable, match="http://box"):
        await client.show("m")
    await client.aclose()


@pytest.mark.parametrize(
    ("body", "insert"),
    [
        ({"capabilities": ["completion", "insert"], "template": ""}, True),
        ({"capabilities": ["completion"], "template": "{{ .Suffix }}"}, False),
        ({"template": "{{ if .Suffix }}<PRE>{{ end }}"}, True),  # servers older than capabilities
        ({"template": "{{ .Prompt }}", "details": {"family": "llama"}}, False),
    ],
)
def test_model_info_insert(body: dict[str, object], insert: bool) -> None:
    info = ModelInfo.from_show("m", body)
    assert info.supports_insert is insert


def test_model_info_context_length() -> None:
    body = {"model_info": {"general.architecture": "llama", "llama.context_length": 8192}}
    assert ModelInfo.from_show("m", body).context_length == 8192
    assert ModelInfo.from_show("m", {}).context_length == 0


@pytest.mark.asyncio
async def test_tags() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("GET", "/api/tags")
        return httpx.Response(200, json={"models": [{"model": "a:1"}, {"model": "b:2"}]})

    client = OllamaClient("http://box", transport=httpx.MockTransport(handler))
    assert [m["model"] for m in await client.tags()] == ["a:1", "b:2"]
    await client.aclose()


@pytest.mark.asyncio
async def test_chat_stream_yields_lines_and_raises_an_error_line() -> None:
    bodies: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        lines = [{"message": {"content": "he"}}, {"message": {"content": "llo"}, "done": True}]
        if len(bodies) == 2:
            lines[1] = {"error": "out of memory"}
        return httpx.Response(200, content="".join(json.dumps(x) + "\n" for x in lines).encode())

    client = OllamaClient("http://box", transport=httpx.MockTransport(handler))
    chunks = [c async for c in client.chat_stream({"model": "m", "messages": []})]
    assert "".join(c["message"]["content"] for c in chunks) == "hello" and bodies[0]["stream"] is True
    with pytest.raises(ResponseError, match="out of memory"):
        async for _ in client.chat_stream({"model": "m"}):
            pass
    await client.aclose()


@pytest.mark.asyncio
async def test_reconnect_points_at_the_new_server_with_the_new_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"models": []})

    client = OllamaClient("http://one", api_key="k1", transport=httpx.MockTransport(handler))
    await client.reconnect("http://two", "")
    await client.tags()
    await client.aclose()
    assert seen[0].url.host == "two" and "authorization" not in seen[0].headers


@pytest.mark.asyncio
async def test_reconnect_with_a_timeout_uses_it_and_keeps_it_otherwise() -> None:
    client = OllamaClient("http://one", timeout=60.0)
    await client.reconnect("http://one", "", 600.0)
    assert client.timeout == 600.0 and client._http.timeout.read == 600.0
    await client.reconnect("http://two", "")
    assert client._http.timeout.read == 600.0
    await client.aclose()


def test_tls_ca_is_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert tls_verify() is True
    monkeypatch.setenv("LLAMITA_TLS_CA", certifi.where())
    assert isinstance(tls_verify(), ssl.SSLContext)
    monkeypatch.setenv("LLAMITA_TLS_CA", str(tmp_path / "missing.pem"))
    with pytest.raises(FileNotFoundError):
        OllamaClient("https://box")


class _ThreadServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        pass


@contextmanager
def _https_box(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An https server with a self-signed certificate (its own CA) answering ``/api/tags``."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (.ci/run installs it)")
    crt, key = tmp_path / "box.crt", tmp_path / "box.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-nodes", "-keyout", str(key), "-out", str(crt), "-days", "2", "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )

    async def tags(request: object) -> JSONResponse:
        return JSONResponse({"models": [{"model": "remote:1"}]})

    app = Starlette(routes=[Route("/api/tags", tags)])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="off", ssl_certfile=crt, ssl_keyfile=key)
    srv = _ThreadServer(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "https test server did not start"
        time.sleep(0.01)
    try:
        yield f"https://127.0.0.1:{sock.getsockname()[1]}", crt
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.mark.asyncio
async def test_https_box_trusted_through_llamita_tls_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _https_box(tmp_path) as (url, crt):
        untrusting = OllamaClient(url)
        with pytest.raises(ServerUnreachable, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusting.tags()
        await untrusting.aclose()
        monkeypatch.setenv("LLAMITA_TLS_CA", str(crt))
        client = OllamaClient(url)
        assert [m["model"] for m in await client.tags()] == ["remote:1"]
        await client.aclose()
