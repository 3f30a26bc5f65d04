"""THE editor side's async client for Ollama's HTTP API: the language server, ``llamita pr`` and
``llamita review`` all talk to the model server through :class:`OllamaClient`.

Why not llamita's own client or the ``ollama`` package: the editor side must run against any
Ollama-compatible URL without importing llamita's server, and every model call has to be an ``await`` on
``httpx.AsyncClient`` so that cancelling the LSP request (an asyncio task cancel) closes the HTTP
connection, which makes the model server stop generating.

Headers: ``Authorization: Bearer <key>`` when an API key is configured (a remote box behind a proxy), and
``X-Llamita-Session`` on completion requests: llamita routes a session to its own KV-cache slot and lets a
newer request of the same session supersede the older one; ``X-Llamita-Priority`` (``interactive`` for
keystrokes, ``batch`` for reviews and PR text) lets llamita serve a keystroke ahead of a long review
prompt.  Stock Ollama ignores both. Certificates
are always verified: against ``LLAMITA_TLS_CA`` when set, as the ``llamita`` CLI does.

Errors::

    ModelServerError        any failure talking to the model server
     ├── ServerUnreachable  connection refused / DNS / timeout: nothing answered
     └── ResponseError      an HTTP error status; ``status`` and Ollama's ``{"error": ...}`` text
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from . import config

SESSION_HEADER = "X-Llamita-Session"
PRIORITY_HEADER = "X-Llamita-Priority"
COMPLETION_EVENTS = "/api/llamita/completion-events"
_UNREACHABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout, httpx.RemoteProtocolError)


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
    """What ``/api/show`` says about a model that matters to the editor side."""

    name: str
    capabilities: frozenset[str]
    family: str
    template: str
    context_length: int = 0  # the trained context (``<arch>.context_length``); 0 when not reported
    # Control and user-defined tokens of the vocabulary (``verbose`` show only): FIM and repo markers.
    special_tokens: frozenset[str] = frozenset()

    @property
    def supports_insert(self) -> bool:
        """Native FIM: the template renders ``.Suffix`` (older servers do not list capabilities)."""
        if self.capabilities:
            return "insert" in self.capabilities
        return ".Suffix" in self.template

    @classmethod
    def from_show(cls, name: str, body: dict[str, Any]) -> ModelInfo:
        details = body.get("details") or {}
        trained = [v for k, v in (body.get("model_info") or {}).items() if k.endswith(".context_length")]
        return cls(
            name=name,
            capabilities=frozenset(body.get("capabilities") or ()),
            family=str(details.get("family") or ""),
            template=str(body.get("template") or ""),
            context_length=int(trained[0]) if trained and isinstance(trained[0], int) else 0,
            special_tokens=special_tokens(body.get("model_info") or {}),
        )


def special_tokens(model_info: dict[str, Any]) -> frozenset[str]:
    """The vocabulary's control and user-defined tokens (GGUF token types 3 and 4).

    Only a ``verbose`` ``/api/show`` lists the vocabulary (otherwise it is null). Without token types,
    tokens shaped like markers (``<...>``, no spaces) are taken instead.
    """
    tokens = model_info.get("tokenizer.ggml.tokens")
    if not isinstance(tokens, list):
        return frozenset()
    types = model_info.get("tokenizer.ggml.token_type")
    if isinstance(types, list) and len(types) == len(tokens):
        return frozenset(str(t) for t, kind in zip(tokens, types, strict=True) if kind in (3, 4))
    return frozenset(
        t for t in tokens if isinstance(t, str) and t.startswith("<") and t.endswith(">") and " " not in t
    )


def tls_verify() -> ssl.SSLContext | bool:
    """Against ``LLAMITA_TLS_CA`` when set, otherwise httpx's default (certifi or ``SSL_CERT_FILE``)."""
    ca = config.tls_ca()
    return ssl.create_default_context(cafile=str(ca)) if ca else True


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
        self._timeout = timeout
        self._transport = transport
        self.base_url = base_url
        self.api_key = api_key
        self._http = self._connect()

    def _connect(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.api_key}"} if self.api_key else {},
            timeout=httpx.Timeout(self._timeout, connect=5.0),
            transport=self._transport,
            verify=tls_verify(),
        )

    @property
    def timeout(self) -> float:
        return self._timeout

    def reconnect(
        self, base_url: str, api_key: str, timeout: float | None = None
    ) -> Coroutine[Any, Any, None]:
        """Talk to ``base_url`` with ``api_key`` (and ``timeout`` when given) from now on; returns the old
        pool's close to await."""
        old = self._http
        self.base_url, self.api_key = base_url, api_key
        self._timeout = self._timeout if timeout is None else timeout
        self._http = self._connect()
        return old.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @asynccontextmanager
    async def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """The response (headers read, body not) with transport failures and error statuses raised."""
        try:
            async with self._http.stream(method, path, json=body, headers=headers) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise ResponseError(response.status_code, _error_text(response))
                yield response
        except _UNREACHABLE as e:
            raise ServerUnreachable(f"{self.base_url}: {e or type(e).__name__}") from e
        except httpx.HTTPError as e:
            raise ModelServerError(f"{self.base_url}: {e or type(e).__name__}") from e

    async def _json(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        async with self._request(method, path, body, headers) as response:
            raw = await response.aread()
        try:
            return json.loads(raw)
        except json.JSONDecodeError as e:
            raise ModelServerError(f"{self.base_url}{path}: invalid JSON in the response") from e

    async def tags(self) -> list[dict[str, Any]]:
        """``/api/tags``: the server's models, newest first."""
        return list((await self._json("GET", "/api/tags")).get("models") or [])

    async def show(self, model: str, *, verbose: bool = False) -> ModelInfo:
        """``/api/show``; ``verbose`` adds the vocabulary (megabytes for a large one: ask once per model)."""
        body: dict[str, Any] = {"model": model, **({"verbose": True} if verbose else {})}
        return ModelInfo.from_show(model, await self._json("POST", "/api/show", body))

    async def generate(
        self, body: dict[str, Any], *, session: str = "", priority: str = ""
    ) -> dict[str, Any]:
        """``/api/generate`` without streaming; ``session`` becomes the ``X-Llamita-Session`` header."""
        return dict(
            await self._json("POST", "/api/generate", {**body, "stream": False}, _headers(session, priority))
        )

    async def completion_events(self, counts: dict[str, Any]) -> None:
        """``/api/llamita/completion-events``: acceptance counters (llamita only; Ollama answers 404)."""
        async with self._request("POST", COMPLETION_EVENTS, counts) as response:
            await response.aread()

    async def chat(self, body: dict[str, Any], *, priority: str = "") -> dict[str, Any]:
        """``/api/chat`` without streaming."""
        return dict(await self._json("POST", "/api/chat", {**body, "stream": False}, _headers("", priority)))

    async def chat_stream(self, body: dict[str, Any], *, priority: str = "") -> AsyncIterator[dict[str, Any]]:
        """``/api/chat`` streamed: one dict per NDJSON line; an ``{"error": ...}`` line raises."""
        async with self._request(
            "POST", "/api/chat", {**body, "stream": True}, _headers("", priority)
        ) as response:
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                try:
                    chunk = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ModelServerError(f"{self.base_url}/api/chat: invalid JSON in the stream") from e
                if isinstance(chunk, dict) and "error" in chunk:
                    raise ResponseError(response.status_code, str(chunk["error"]))
                yield chunk


def _headers(session: str, priority: str) -> dict[str, str] | None:
    """llamita's editor headers (stock Ollama ignores them): the session, and the priority class."""
    headers = {SESSION_HEADER: session} if session else {}
    if priority:
        headers[PRIORITY_HEADER] = priority
    return headers or None


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except json.JSONDecodeError:
        return response.text.strip() or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    return response.text.strip()
