"""A small async client for the parts of Ollama's HTTP API the language server uses.

Why not llamita's own client or the ``ollama`` package: the language server must run against any
Ollama-compatible URL without importing llamita's server, and every model call has to be an ``await`` on
``httpx.AsyncClient`` so that cancelling the LSP request (an asyncio task cancel) closes the HTTP
connection, which makes the model server stop generating.

Headers: ``Authorization: Bearer <key>`` when an API key is configured (a remote box behind a proxy), and
``X-Llamita-Session`` on completion requests: llamita routes a session to its own KV-cache slot and lets a
newer request of the same session supersede the older one; stock Ollama ignores the header.

Errors::

    ModelServerError        any failure talking to the model server
     ├── ServerUnreachable  connection refused / DNS / timeout: nothing answered
     └── ResponseError      an HTTP error status; ``status`` and Ollama's ``{"error": ...}`` text
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

SESSION_HEADER = "X-Llamita-Session"


class ModelServerError(Exception):
    """Base class: the model server could not answer a request."""


class ServerUnreachable(ModelServerError):
    """Raised when no connection could be made or the server did not answer in time."""


class ResponseError(ModelServerError):
    """Raised when the server answered with an error status (e.g. 404 for an unknown model)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{message} (HTTP {status})")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ModelInfo:
    """What ``/api/show`` says about a model that matters for FIM."""

    name: str
    capabilities: frozenset[str]
    family: str
    template: str

    @property
    def supports_insert(self) -> bool:
        """Native FIM: the template renders ``.Suffix`` (older servers do not list capabilities)."""
        if self.capabilities:
            return "insert" in self.capabilities
        return ".Suffix" in self.template

    @classmethod
    def from_show(cls, name: str, body: dict[str, Any]) -> ModelInfo:
        details = body.get("details") or {}
        return cls(
            name=name,
            capabilities=frozenset(body.get("capabilities") or ()),
            family=str(details.get("family") or ""),
            template=str(body.get("template") or ""),
        )


class OllamaClient:
    """One connection pool to the model server; cheap to keep for the server's lifetime."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str = "",
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=5.0),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        try:
            response = await self._http.post(path, json=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout, httpx.RemoteProtocolError) as e:
            raise ServerUnreachable(f"{self.base_url}: {e or type(e).__name__}") from e
        except httpx.HTTPError as e:
            raise ModelServerError(f"{self.base_url}: {e or type(e).__name__}") from e
        if response.status_code >= 400:
            raise ResponseError(response.status_code, _error_text(response))
        try:
            return response.json()
        except json.JSONDecodeError as e:
            raise ModelServerError(f"{self.base_url}{path}: invalid JSON in the response") from e

    async def show(self, model: str) -> ModelInfo:
        return ModelInfo.from_show(model, await self._post("/api/show", {"model": model}))

    async def generate(self, body: dict[str, Any], *, session: str = "") -> dict[str, Any]:
        """``/api/generate`` without streaming; ``session`` becomes the ``X-Llamita-Session`` header."""
        headers = {SESSION_HEADER: session} if session else None
        return dict(await self._post("/api/generate", {**body, "stream": False}, headers))

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """``/api/chat`` without streaming."""
        return dict(await self._post("/api/chat", {**body, "stream": False}))


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except json.JSONDecodeError:
        return response.text.strip() or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    return response.text.strip()
