"""The only place that maps domain errors to HTTP status codes (Ollama's codes and bodies)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..create import CreateError
from ..model import ModelNotFound
from ..names import InvalidName
from ..store import BlobNotFound, DigestMismatch, InvalidDigest, StoreError


class APIError(Exception):
    """Raised by handlers for a request error with an explicit status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def status_of(exc: BaseException) -> int:
    if isinstance(exc, APIError | CreateError):
        return exc.status
    if isinstance(exc, InvalidName | InvalidDigest | DigestMismatch):
        return 400
    if isinstance(exc, ModelNotFound | BlobNotFound):
        return 404
    if isinstance(exc, StoreError):
        return 500
    return 500


def error_response(message: str, status: int) -> JSONResponse:
    """Ollama's error body: ``{"error": "..."}``."""
    return JSONResponse({"error": message}, status_code=status, media_type="application/json; charset=utf-8")


async def handle(request: Request, exc: Exception) -> Response:
    return error_response(str(exc), status_of(exc))


async def not_found(request: Request, exc: Exception) -> Response:
    """gin's plain-text 404 for unknown paths."""
    return Response("404 page not found", status_code=404, media_type="text/plain")


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    return Response("405 method not allowed", status_code=405, media_type="text/plain")


HANDLED: tuple[type[Exception], ...] = (APIError, CreateError, InvalidName, ModelNotFound, StoreError)
