"""A recording pass-through proxy in front of a real llamita server, for the language-server tests.

``tests/lsp/conftest.py`` provides the ``proxy`` and ``tiny_coder`` fixtures to the language-server tests;
the client tests (``tests/clients/``) import ``tiny_coder`` from here by name.


The language server runs as a subprocess, so the tests cannot look inside it; they look at what it sends.
Every request is recorded (path, headers, JSON body) and forwarded unchanged to the real server; a JSON
answer is recorded too (``answer``: e.g. the KV-cache counts of a non-streamed generate). With
``hold`` set, ``/api/generate`` requests are held that long before being forwarded while the proxy
watches the connection, so a test can see the language server *close* the HTTP request on cancellation.
Only FIM requests are held (those with a prompt), not the empty generate that loads a model.
``scripted[path]`` answers that path with a fixed JSON body instead (a review with known findings).
``options`` is merged into the ``options`` of FIM requests before they are forwarded (``temperature: 0``
makes a real model's answer reproducible where the client cannot set it, e.g. the VS Code extension).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class Record:
    path: str
    headers: dict[str, str]
    body: Any
    disconnected: bool = False
    answer: Any = None  # the upstream's JSON answer (None until it came, or when it was not JSON)


@dataclass
class ModelProxy:
    upstream: str
    url: str = ""
    hold: float = 0.0
    records: list[Record] = field(default_factory=list)
    scripted: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def calls(self, path: str) -> list[Record]:
        return [r for r in self.records if r.path == path]

    def fim_calls(self) -> list[Record]:
        """``/api/generate`` requests with a prompt (not the empty one that only loads the model)."""
        return [r for r in self.calls("/api/generate") if isinstance(r.body, dict) and r.body.get("prompt")]

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return False

    async def handle(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        record = Record(request.url.path, {k.lower(): v for k, v in request.headers.items()}, body)
        self.records.append(record)
        fim = request.url.path == "/api/generate" and isinstance(body, dict) and bool(body.get("prompt"))
        if self.hold and fim:
            deadline = time.monotonic() + self.hold
            while time.monotonic() < deadline:
                if await request.is_disconnected():
                    record.disconnected = True
                    return Response(status_code=499)
                await asyncio.sleep(0.01)
        if request.url.path in self.scripted:
            return Response(json.dumps(self.scripted[request.url.path]), media_type="application/json")
        if self.options and fim:
            raw = json.dumps({**body, "options": {**(body.get("options") or {}), **self.options}}).encode()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        # 600 s: a first request loads the model, and CI's two slow cores may be busy with other tests.
        async with httpx.AsyncClient(base_url=self.upstream, timeout=600) as client:
            answer = await client.request(request.method, request.url.path, content=raw, headers=headers)
        with suppress(ValueError):  # a stream (NDJSON) or an empty answer: not recorded
            record.answer = answer.json()
        return Response(answer.content, status_code=answer.status_code, media_type="application/json")


class _ThreadServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        pass


@contextmanager
def running_proxy(upstream: str) -> Iterator[ModelProxy]:
    proxy = ModelProxy(upstream)
    app = Starlette(routes=[Route("/{path:path}", proxy.handle, methods=["GET", "POST", "HEAD", "DELETE"])])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    proxy.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    srv = _ThreadServer(uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("proxy did not start")
        time.sleep(0.01)
    try:
        yield proxy
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def proxy(server: Any) -> Iterator[ModelProxy]:
    """A recording proxy in front of the real llamita ``server`` fixture."""
    with running_proxy(server.url) as p:
        yield p


@pytest.fixture
def tiny_coder(server: Any, tmp_path: Path) -> str:
    """A FIM-capable model (its template has a .Suffix branch) made from the generated tiny GGUF."""
    from ggufgen import write_tiny_gguf

    client = ollama.Client(host=server.url)
    try:
        digest = client.create_blob(write_tiny_gguf(tmp_path / "coder.gguf", fim=True))
        client.create(model="tiny-coder", files={"coder.gguf": digest})
        assert "insert" in (client.show("tiny-coder").capabilities or [])
    finally:
        client.close()
    return "tiny-coder"
