"""``POST /api/pull`` and ``POST /api/push``: thin handlers over :mod:`server.registry`.

Request bodies are Ollama's: ``{"model" (or "name"), "insecure", "stream"}``.  The reply is
the NDJSON progress stream (or, with ``"stream": false``, its last object), with Ollama's
error rules from :func:`progress_response`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llamita.server.model.create import existing_name
from llamita.server.registry.pull import pull as pull_model
from llamita.server.registry.push import push as push_model
from llamita.server.store.names import ModelRequired, require_name

from .request import read_json, store_of, typed_body
from .stream import progress_response

# PullRequest and PushRequest have the same fields (api/types.go).
TRANSFER_REQUEST = {
    "model": "string",
    "name": "string",
    "insecure": "bool",
    "username": "string",
    "password": "string",
    "stream": "bool",
}


def _target(body: dict[str, object], struct: str) -> str:
    typed_body(body, struct, TRANSFER_REQUEST)
    value = body.get("model") or body.get("name") or ""
    if not value:
        raise ModelRequired()
    return str(value)


async def _transfer(request: Request, struct: str, run: Callable[..., Iterator[dict[str, Any]]]) -> Response:
    """Pull and push read the same body and answer the same progress stream."""
    body = await read_json(request)
    store = store_of(request)
    name = existing_name(store, require_name(_target(body, struct)))
    events = run(store, name, insecure=bool(body.get("insecure")))
    return await progress_response(request, events, body.get("stream") is not False)


async def pull(request: Request) -> Response:
    return await _transfer(request, "PullRequest", pull_model)


async def push(request: Request) -> Response:
    return await _transfer(request, "PushRequest", push_model)


ROUTES = [
    Route("/api/pull", pull, methods=["POST"]),
    Route("/api/push", push, methods=["POST"]),
]
