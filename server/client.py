"""A small httpx client for the native API, used by the CLI (and usable by tests).

It speaks only HTTP, so the CLI works the same against a local or a remote server, as
Ollama's does.  Errors come back as :class:`ResponseError` carrying the server's message.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from . import config


class ResponseError(Exception):
    """The server answered with an error (``{"error": ...}``) or an unexpected status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class ServerUnreachable(Exception):
    """Raised when nothing answers at the configured address."""


def _error(response: httpx.Response) -> ResponseError:
    try:
        message = response.json().get("error") or response.text
    except (ValueError, AttributeError):
        message = response.text or response.reason_phrase
    if response.status_code == 401:
        message = f"{message} (this server needs an API key: set LLAMITA_API_KEY)"
    return ResponseError(message, response.status_code)


def tls_verify() -> ssl.SSLContext | bool:
    """Certificates are always verified: against ``LLAMITA_TLS_CA`` when set (a self-signed
    box), otherwise against ``SSL_CERT_FILE``/``SSL_CERT_DIR`` or certifi (httpx's rules)."""
    ca = config.tls_ca()
    return ssl.create_default_context(cafile=str(ca)) if ca else True


def auth_headers(api_key: str | None = None) -> dict[str, str]:
    """``Authorization: Bearer`` for ``api_key``, defaulting to ``LLAMITA_API_KEY``."""
    key = config.api_key() if api_key is None else api_key
    return {"Authorization": f"Bearer {key}"} if key else {}


class Client:
    """Synchronous client; one per CLI invocation."""

    def __init__(
        self,
        host: str | None = None,
        timeout: float | None = None,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``transport`` replaces the network (tests pass an ``httpx.MockTransport``)."""
        self.base = host or config.host().connectable.url
        self._http = httpx.Client(
            base_url=self.base,
            timeout=timeout,
            headers=auth_headers(api_key),
            verify=tls_verify(),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError as e:
            raise ServerUnreachable(self.base) from e
        if response.status_code >= 400:
            raise _error(response)
        return response

    def _stream(self, method: str, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        try:
            with self._http.stream(method, path, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response)
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if "error" in event:
                        raise ResponseError(event["error"], response.status_code)
                    yield event
        except httpx.ConnectError as e:
            raise ServerUnreachable(self.base) from e

    def heartbeat(self) -> None:
        self._request("HEAD", "/")

    def version(self) -> str:
        return self._request("GET", "/api/version").json()["version"]

    def list(self) -> list[dict[str, Any]]:
        return self._request("GET", "/api/tags").json()["models"]

    def show(self, model: str, verbose: bool = False) -> dict[str, Any]:
        return self._request("POST", "/api/show", json={"model": model, "verbose": verbose}).json()

    def copy(self, source: str, destination: str) -> None:
        self._request("POST", "/api/copy", json={"source": source, "destination": destination})

    def delete(self, model: str) -> None:
        self._request("DELETE", "/api/delete", json={"model": model})

    def has_blob(self, digest: str) -> bool:
        try:
            self._request("HEAD", f"/api/blobs/{digest}")
        except ResponseError as e:
            if e.status == 404:
                return False
            raise
        return True

    def create_blob(self, digest: str, path: Path, progress: Any = None) -> None:
        """Upload a file unless the server already has it; ``progress(n)`` per chunk."""
        if self.has_blob(digest):
            if progress:
                progress(path.stat().st_size)
            return

        def chunks() -> Iterator[bytes]:
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    if progress:
                        progress(len(chunk))
                    yield chunk

        self._request("POST", f"/api/blobs/{digest}", content=chunks())

    def create(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        return self._stream("POST", "/api/create", {**request, "stream": True})

    def pull(self, model: str, insecure: bool = False) -> Iterator[dict[str, Any]]:
        """Stream ``/api/pull`` progress; a failure mid-stream raises :class:`ResponseError`."""
        return self._stream("POST", "/api/pull", {"model": model, "insecure": insecure, "stream": True})

    def push(self, model: str, insecure: bool = False) -> Iterator[dict[str, Any]]:
        return self._stream("POST", "/api/push", {"model": model, "insecure": insecure, "stream": True})

    def show_session(self, model: str, system: str, options: dict[str, Any]) -> dict[str, Any]:
        """``/show`` in the REPL: the server folds the session's system prompt into its answer."""
        body: dict[str, Any] = {"model": model}
        if system:
            body["system"] = system
        if options:
            body["options"] = options
        return self._request("POST", "/api/show", json=body).json()

    def generate(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Stream ``/api/generate`` chunks (the body's own ``stream`` is left to the server)."""
        return self._stream("POST", "/api/generate", body)

    def chat(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        return self._stream("POST", "/api/chat", body)

    def embed(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", "/api/embed", json=body).json()

    def ps(self) -> list[dict[str, Any]]:
        return self._request("GET", "/api/ps").json()["models"]

    def usage(self, **params: str | int) -> dict[str, Any]:
        """``/api/usage`` (``key``, ``model``, ``days`` filters; an admin key when keys have roles)."""
        return self._request("GET", "/api/usage", params=params).json()
