"""The language server's HTTP client: headers, errors, and what /api/show tells about FIM."""

from __future__ import annotations

import httpx
import pytest

from llamita.lsp.client import (
    SESSION_HEADER,
    ModelInfo,
    ModelServerError,
    OllamaClient,
    ResponseError,
    ServerUnreachable,
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
