"""``POST /api/pull`` and ``POST /api/push``: thin handlers over :mod:`server.registry`.

Request bodies are Ollama's: ``{"model" (or "name"), "insecure", "stream"}``.  The reply is
the NDJSON progress stream (or, with ``"stream": false``, its last object), with Ollama's
error rules from :func:`progress_response`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llamita.server.model.create import existing_name
from llamita.server.registry.pull import pull as pull_model
from llamita.server.registry.push import push as push_model
from llamita.server.store.names import require_name

from .errors import APIError
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
        raise APIError("model is required", 400)
    return str(value)


async def pull(request: Request) -> Response:
    body = await read_json(request)
    store = store_of(request)
    name = existing_name(store, require_name(_target(body, "PullRequest")))
    events = pull_model(store, name, insecure=bool(body.get("insecure")))
    return await progress_response(request, events, body.get("stream") is not False)


async def push(request: Request) -> Response:
    body = await read_json(request)
    store = store_of(request)
    name = existing_name(store, require_name(_target(body, "PushRequest")))
    events = push_model(store, name, insecure=bool(body.get("insecure")))
    return await progress_response(request, events, body.get("stream") is not False)


ROUTES = [
    Route("/api/pull", pull, methods=["POST"]),
    Route("/api/push", push, methods=["POST"]),
]
