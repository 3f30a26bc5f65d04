"""The only place that maps domain errors to HTTP status codes (Ollama's codes and bodies), and
the one JSON reply of the native API (Gin's ``c.JSON``: ``application/json; charset=utf-8``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from llamita.server.engine import EmbeddingError, QueueFull
from llamita.server.model.create import BaseBlobMissing, CreateError, InvalidCreateRequest, QuantizationFailed
from llamita.server.model.model import ModelNotFound
from llamita.server.prompt.fit import PromptTooLong
from llamita.server.registry.errors import RegistryError
from llamita.server.runtime.errors import Canceled, Failed, InvalidRequest, ModelMissing
from llamita.server.store.blobs import BlobNotFound, DigestMismatch, InvalidDigest, StoreError
from llamita.server.store.names import InvalidName


class APIError(Exception):
    """Raised by handlers for a request error with an explicit status."""

    def __init__(self, message: str, status: int = 400, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


# Exception type → status; the first row that matches wins (a subclass before its base).
STATUSES: tuple[tuple[type[Exception], int], ...] = (
    # request pipeline errors (runtime/, engine/, prompt/)
    (InvalidRequest, 400),
    (PromptTooLong, 400),
    (EmbeddingError, 400),
    (ModelMissing, 404),
    (Canceled, 499),
    (Failed, 500),
    (QueueFull, 503),
    # model/ and store/ errors
    (InvalidCreateRequest, 400),
    (BaseBlobMissing, 500),
    (QuantizationFailed, 500),
    (CreateError, 500),
    (InvalidName, 400),
    (InvalidDigest, 400),
    (DigestMismatch, 400),
    (ModelNotFound, 404),
    (BlobNotFound, 404),
    (StoreError, 500),
)


def status_of(exc: BaseException) -> int:
    if isinstance(exc, APIError):
        return exc.status
    for kind, status in STATUSES:
        if isinstance(exc, kind):
            return status
    return 500


# What Gin's c.JSON writes, on every native JSON body (replies and errors alike)...
JSON_TYPE = "application/json; charset=utf-8"
# ...except where Ollama set the header first: the progress routes' (create, pull, push) replies
# and the errors their stream reports before its first line (waitForStream, streamResponse).
BARE_JSON_TYPE = "application/json"


def json_reply(
    content: Any, status: int = 200, headers: dict[str, str] | None = None, media_type: str = JSON_TYPE
) -> JSONResponse:
    """A native JSON body, with Gin's Content-Type."""
    return JSONResponse(content, status_code=status, headers=headers, media_type=media_type)


def error_response(
    message: str, status: int, headers: dict[str, str] | None = None, media_type: str = JSON_TYPE
) -> JSONResponse:
    """Ollama's error body: ``{"error": "..."}``."""
    return json_reply({"error": message}, status, headers, media_type)


def as_response(exc: APIError) -> JSONResponse:
    """An ASGI response for a refusal made outside the router (in a middleware)."""
    return error_response(str(exc), exc.status, exc.headers)


async def handle(request: Request, exc: Exception) -> Response:
    return error_response(str(exc), status_of(exc), getattr(exc, "headers", None))


# Refusals made by the request gates (auth, limits) before or while a body is read.
def unauthorized() -> APIError:
    return APIError("unauthorized", 401, {"WWW-Authenticate": 'Bearer realm="llamita"'})


def body_too_large(limit: int) -> APIError:
    """The client is still sending, so the connection is closed after the answer."""
    return APIError(f"request body too large (limit {limit} bytes)", 413, {"Connection": "close"})


def body_timeout(seconds: float) -> APIError:
    return APIError(f"request body not received within {seconds:g}s", 408, {"Connection": "close"})


def too_many_requests(limit: int) -> APIError:
    """429 is what Continue retries with backoff; Retry-After tells other clients when."""
    return APIError(
        f"too many concurrent requests for this API key (limit {limit})", 429, {"Retry-After": "1"}
    )


async def not_found(request: Request, exc: Exception) -> Response:
    """gin's plain-text 404 for unknown paths."""
    return Response("404 page not found", status_code=404, media_type="text/plain")


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    return Response("405 method not allowed", status_code=405, media_type="text/plain")


# RegistryError: every pull/push failure is a 500, as in Ollama (status_of's default).
HANDLED: tuple[type[Exception], ...] = (APIError, RegistryError, *(kind for kind, _ in STATUSES))
