"""Ollama's model-management routes: one small handler per route.

Handlers parse the body, call the store / create / show modules and shape the reply; they
hold no logic of their own.  Blocking disk work runs in the thread pool.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from llamita.server import __version__, config
from llamita.server.gocompat.time import rfc3339
from llamita.server.model import create as creator
from llamita.server.model.model import ModelNotFound, load_model
from llamita.server.model.show import show
from llamita.server.store.blobs import BlobNotFound, normalize_digest
from llamita.server.store.names import InvalidName, parse_model_ref, require_name

from .errors import error_response, json_reply
from .request import read_json, store_of, typed_body
from .stream import progress_response

# The Ollama API level llamita implements; clients gate features on it.
OLLAMA_API_VERSION = "0.33.0"


def _wants_stream(body: dict[str, Any]) -> bool:
    return body.get("stream") is not False


async def version(request: Request) -> Response:
    return json_reply({"version": OLLAMA_API_VERSION, "llamita": __version__})


def _list_entry(request: Request, manifest: Any) -> dict[str, Any]:
    model = load_model(store_of(request), manifest.name)
    return {
        "name": manifest.name.shortest,
        "model": manifest.name.shortest,
        "modified_at": rfc3339(manifest.modified),
        "size": manifest.size,
        "digest": manifest.digest,
        "details": model.details(),
        "capabilities": model.capabilities,
    }


async def tags(request: Request) -> Response:
    def collect() -> list[dict[str, Any]]:
        manifests = sorted(store_of(request).iter_manifests(), key=lambda m: m.modified, reverse=True)
        return [_list_entry(request, m) for m in manifests]

    return json_reply({"models": await run_in_threadpool(collect)})


# Go's request structs (api/types.go), for the field-type check every handler makes first.
SHOW_REQUEST = {
    "model": "string",
    "name": "string",
    "system": "string",
    "template": "string",
    "verbose": "bool",
    "options": "map[string]interface {}",
}
COPY_REQUEST = {"source": "string", "destination": "string"}
DELETE_REQUEST = {"model": "string", "name": "string"}


def _model_field(body: dict[str, Any]) -> str:
    """``model``, else the deprecated ``name`` (both already checked to be strings)."""
    return body.get("model") or body.get("name") or ""


async def show_model(request: Request) -> Response:
    body = typed_body(await read_json(request), "ShowRequest", SHOW_REQUEST)
    name = parse_model_ref(_model_field(body))  # blank: "model is required"; "x:local" is "x"
    if not name.is_valid:
        raise InvalidName()

    def build() -> dict[str, Any]:
        model = load_model(store_of(request), name)
        return show(model, verbose=bool(body.get("verbose")), system=body.get("system") or "")

    return json_reply(await run_in_threadpool(build))


async def create(request: Request) -> Response:
    body = await read_json(request)
    store = store_of(request)
    # Off the event loop: it parses the template and reads every manifest.
    await run_in_threadpool(creator.validate, store, body)
    return await progress_response(request, creator.create(store, body), _wants_stream(body))


async def copy(request: Request) -> Response:
    body = typed_body(await read_json(request), "CopyRequest", COPY_REQUEST)
    source_text, dest_text = body.get("source") or "", body.get("destination") or ""
    source = require_name(source_text, f'source "{source_text}" is invalid')
    destination = require_name(dest_text, f'destination "{dest_text}" is invalid')
    store = store_of(request)
    if store.get(source) is None:
        raise ModelNotFound(source_text, 'model "{}" not found')
    await run_in_threadpool(store.copy, source, creator.existing_name(store, destination))
    return Response(status_code=200)


async def delete(request: Request) -> Response:
    body = typed_body(await read_json(request), "DeleteRequest", DELETE_REQUEST)
    name_text = _model_field(body)
    name = require_name(name_text, f'name "{name_text}" is invalid')
    store = store_of(request)
    if store.get(name) is None:
        raise ModelNotFound(name_text)
    await run_in_threadpool(store.delete, name, not config.no_prune())
    return Response(status_code=200)


def _digest_param(request: Request) -> str:
    return normalize_digest(request.path_params["digest"])  # InvalidDigest is a 400


async def head_blob(request: Request) -> Response:
    digest = _digest_param(request)
    if not store_of(request).has_blob(digest):
        raise BlobNotFound(digest)
    return Response(status_code=200)


async def create_blob(request: Request) -> Response:
    """Stream the body into the store; it is admitted only if it hashes to the digest."""
    digest = _digest_param(request)
    store = store_of(request)
    if store.has_blob(digest):
        return Response(status_code=200)
    writer = store.blob_writer()
    try:
        async for chunk in request.stream():
            writer.write(chunk)  # page-cache write + hash of one chunk: cheap enough inline
        await run_in_threadpool(writer.commit, digest)
    except ClientDisconnect:
        writer.abort()
        return error_response("client disconnected during upload", 400)
    finally:
        writer.abort()
    return Response(status_code=201)
