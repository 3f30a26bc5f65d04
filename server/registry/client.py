"""HTTP to one registry: URLs, authentication, retries and the error messages users read.

URLs (Docker distribution API, which Ollama's registry speaks)::

    <scheme>://<host>/v2/<namespace>/<model>/manifests/<tag>
    <scheme>://<host>/v2/<namespace>/<model>/blobs/<digest>
    <scheme>://<host>/v2/<namespace>/<model>/blobs/uploads/

The scheme is the name's (``https`` unless it was written ``http://…``); ``insecure`` turns
it into ``http``, and an ``http://`` name without ``insecure`` is refused.  Hugging Face needs
nothing special, exactly as in Ollama: ``hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M``
is host ``hf.co``, namespace ``bartowski``, model ``Llama-3.2-1B-Instruct-GGUF`` and tag
``Q4_K_M``, so its manifest is
``https://hf.co/v2/bartowski/Llama-3.2-1B-Instruct-GGUF/manifests/Q4_K_M`` (Hugging Face picks
the GGUF for that quantisation; ``latest`` gets its default), and ``huggingface.co/…`` works
the same way under its own host.

Transient failures (connection errors, timeouts, a connection cut mid-body, 408/429/5xx)
are retried with exponential backoff; a 401 is answered once with credentials or a
token (see :mod:`.auth`); 404 is :class:`NotFound`, 401/403 :class:`Unauthorized`.
"""

from __future__ import annotations

import json
import platform
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from llamita.server import __version__
from llamita.server.store.names import Name

from . import auth
from .errors import InsecureProtocol, NotFound, RegistryError, RegistryUnavailable, Unauthorized
from .parts import DEFAULT_PARTS, MAX_PART, MB, MIN_PART

MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
# Ollama's shape first: registries (Hugging Face's among them) may look for an ollama/ client.
USER_AGENT = f"ollama/0.33.0 ({_GOARCH} {platform.system().lower()}) llamita/{__version__}"

_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 10

Body = bytes | Callable[[], Iterable[bytes]] | None


@dataclass(frozen=True)
class Policy:
    """Retry, timeout and sizing knobs.  The defaults are Ollama's; tests shrink them."""

    request_attempts: int = 3  # manifests, HEADs, upload bookkeeping
    transfer_attempts: int = 6  # per download part / per blob upload, reset when bytes flow
    backoff: float = 1.0  # seconds before the 2nd attempt, doubled after each failure
    max_backoff: float = 30.0
    stall_timeout: float = 30.0  # no byte for this long = the attempt failed
    connect_timeout: float = 10.0
    parts: int = DEFAULT_PARTS
    min_part: int = MIN_PART
    max_part: int = MAX_PART
    monolithic_limit: int = 32 * MB  # smaller blobs are uploaded with one PUT
    upload_chunk: int = MIN_PART
    sync_interval: float = 1.0  # how often a part fsyncs its data and saves its state

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure (1, 2, 4, …)."""
        return min(self.backoff * 2.0 ** max(failures - 1, 0), self.max_backoff)


def base_url(name: Name, insecure: bool) -> str:
    """``https://host`` (or ``http://host`` with ``insecure``); refuses a bare ``http://`` name."""
    scheme = name.scheme.lower()
    if scheme not in ("http", "https"):
        raise RegistryError(f"unsupported protocol scheme {name.scheme!r}")
    if scheme == "http" and not insecure:
        raise InsecureProtocol()
    return f"{'http' if insecure else scheme}://{name.host}"


def repository(name: Name) -> str:
    return f"{name.namespace}/{name.model}"


def manifest_url(name: Name, insecure: bool = False) -> str:
    return f"{base_url(name, insecure)}/v2/{repository(name)}/manifests/{name.tag}"


def blob_url(name: Name, digest: str, insecure: bool = False) -> str:
    return f"{base_url(name, insecure)}/v2/{repository(name)}/blobs/{digest}"


def upload_url(name: Name, insecure: bool = False) -> str:
    return f"{base_url(name, insecure)}/v2/{repository(name)}/blobs/uploads/"


def _registry_message(response: httpx.Response) -> str:
    """The ``errors[].message`` of a registry's JSON error body, else its text."""
    try:
        text = response.read().decode("utf-8", "replace").strip()
    except httpx.HTTPError:
        return response.reason_phrase
    try:
        doc = json.loads(text)
        messages = [str(e.get("message") or e.get("code")) for e in doc.get("errors", [])]
        if messages:
            return "; ".join(messages)
    except (ValueError, AttributeError, TypeError):
        pass
    return text[:300] or response.reason_phrase


def _transport_reason(error: httpx.HTTPError) -> str:
    text = str(error) or type(error).__name__
    if "refused" in text.lower():
        return "connection refused"
    return text.split("] ", 1)[-1]


def is_transient(error: BaseException) -> bool:
    return isinstance(error, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)


class RegistryClient:
    """Requests to the registry that serves ``name``; safe to share between threads."""

    def __init__(
        self,
        name: Name,
        insecure: bool = False,
        policy: Policy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self.insecure = insecure
        self.policy = policy or Policy()
        self.base = base_url(name, insecure)
        self.host = name.host
        self.sleep = sleep
        self._transport = transport
        timeout = httpx.Timeout(self.policy.stall_timeout, connect=self.policy.connect_timeout)
        self._http = httpx.Client(
            transport=transport, timeout=timeout, follow_redirects=False, headers={"User-Agent": USER_AGENT}
        )
        self._authorization: str | None = None
        self._lock = threading.Lock()

    def fork(self) -> RegistryClient:
        """A client of its own for a background download, starting with this one's credentials."""
        other = RegistryClient(self.name, self.insecure, self.policy, self._transport, self.sleep)
        with self._lock:
            other._authorization = self._authorization
        return other

    def close(self) -> None:
        """Close the connections; an injected transport belongs to the caller and stays open."""
        if self._transport is None:
            self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- URLs --------------------------------------------------------------------------
    def manifest_url(self) -> str:
        return manifest_url(self.name, self.insecure)

    def blob_url(self, digest: str) -> str:
        return blob_url(self.name, digest, self.insecure)

    def upload_url(self) -> str:
        return upload_url(self.name, self.insecure)

    def _is_registry(self, url: str) -> bool:
        return urlsplit(url).netloc.lower() == self.host.lower()

    # ---- requests ----------------------------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        body: Body = None,
        attempts: int | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """One request with retries and auth (status < 400 or an error is raised).

        With ``stream`` the response is returned open for the caller to read and close;
        otherwise its body is read and the connection released.
        """
        response = self._send(method, url, headers, body, attempts)
        if stream:
            return response
        try:
            response.read()
        except httpx.HTTPError as e:
            raise self._unavailable(e) from e
        finally:
            response.close()
        return response

    def _send(
        self, method: str, url: str, headers: dict[str, str] | None, body: Body, attempts: int | None
    ) -> httpx.Response:
        """:meth:`request`'s retries and auth; returns an open streaming response (status < 400).

        ``body`` is bytes or a function returning a fresh iterable,
        so that a retried or re-authorised request can send it again.

        The 401 → credentials/token → retry dance is done here rather than in an
        ``httpx.Auth.auth_flow`` (which exists for it): upload chunks are streamed from disk,
        and an auth flow can only resend a request whose body httpx has buffered in memory
        (``requires_request_body``), up to ``monolithic_limit`` or ``upload_chunk`` bytes per
        request.  Calling ``body()`` again costs nothing, and one loop keeps the auth retry,
        the transient-failure backoff and the error messages in one place.
        """
        attempts = attempts or self.policy.request_attempts
        failures = 0
        authorised = False
        while True:
            try:
                response = self._send_once(method, url, headers, body)
            except httpx.HTTPError as e:
                if not is_transient(e):
                    raise RegistryError(f"{method} {url}: {e}") from e
                failures = self._back_off(failures, attempts, self._unavailable(e), e)
                continue
            status = response.status_code
            if status == 401 and self._is_registry(url):
                header = response.headers.get("www-authenticate", "")
                message = _registry_message(response)
                response.close()
                if authorised:
                    raise Unauthorized(f"unauthorized: access denied ({self.host}: {message})")
                self._authorize(auth.parse_challenge(header))
                authorised = True
                continue
            if status in _TRANSIENT_STATUS:
                message = _registry_message(response)
                response.close()
                unavailable = RegistryUnavailable(f"registry {self.host} is unavailable: {status}: {message}")
                failures = self._back_off(failures, attempts, unavailable)
                continue
            if status >= 400:
                raise self._status_error(response)
            return response

    def _send_once(self, method: str, url: str, headers: dict[str, str] | None, body: Body) -> httpx.Response:
        """One attempt, with the current credentials when the URL is the registry's (not a CDN's)."""
        request_headers = dict(headers or {})
        with self._lock:
            if self._authorization and self._is_registry(url):
                request_headers["Authorization"] = self._authorization
        content = body() if callable(body) else body
        request = self._http.build_request(method, url, headers=request_headers, content=content)
        return self._http.send(request, stream=True)

    def _back_off(
        self, failures: int, attempts: int, give_up: RegistryError, cause: BaseException | None = None
    ) -> int:
        """Count one transient failure: raise ``give_up`` once ``attempts`` are spent, else wait."""
        failures += 1
        if failures >= attempts:
            if cause is not None:
                raise give_up from cause
            raise give_up
        self.sleep(self.policy.delay(failures))
        return failures

    def _unavailable(self, error: httpx.HTTPError) -> RegistryUnavailable:
        if isinstance(error, httpx.ConnectError):
            return RegistryUnavailable(
                f"could not connect to registry {self.host}: {_transport_reason(error)}"
            )
        if isinstance(error, httpx.TimeoutException):
            return RegistryUnavailable(f"registry {self.host} timed out: {_transport_reason(error)}")
        return RegistryUnavailable(f"connection to registry {self.host} failed: {_transport_reason(error)}")

    def _status_error(self, response: httpx.Response) -> RegistryError:
        status = response.status_code
        message = _registry_message(response)
        response.close()
        if status == 404:
            return NotFound()
        if status == 403:
            return Unauthorized(
                f"unauthorized: access denied to {repository(self.name)} ({status}: {message})"
            )
        if status == 401:
            return Unauthorized(f"unauthorized: access denied ({message})")
        return RegistryError(f"{status}: {message}")

    # ---- authentication ----------------------------------------------------------------
    def _authorize(self, challenge: auth.Challenge | None) -> None:
        """Answer a 401: Basic credentials, or a bearer token fetched from the realm."""
        creds = auth.credentials(self.host)
        hint = (
            f"unauthorized: access denied; {self.host} wants credentials: set "
            f"{auth.AUTH_VARIABLE}=user:password for the server or run 'docker login {self.host}'"
        )
        if challenge is None or (challenge.scheme == "basic" and creds is None):
            raise Unauthorized(hint)
        if challenge.scheme == "basic":
            assert creds is not None
            with self._lock:
                self._authorization = auth.basic_header(*creds)
            return
        if not challenge.realm.startswith(("https://", "http://")):
            raise Unauthorized(f"unauthorized: {self.host} sent an unusable token realm {challenge.realm!r}")
        headers = {}
        refusal = auth.realm_refusal(challenge.realm, self.host, urlsplit(self.base).scheme)
        if creds is not None and not refusal:
            headers["Authorization"] = auth.basic_header(*creds)
        try:
            response = self._http.get(challenge.token_url(), headers=headers)
        except httpx.HTTPError as e:
            raise RegistryUnavailable(f"token server {challenge.realm} failed: {_transport_reason(e)}") from e
        if response.status_code in (401, 403):
            if creds is not None and refusal:
                raise Unauthorized(
                    f"unauthorized: access denied; {self.host}'s credentials were not sent because {refusal}"
                )
            raise Unauthorized(hint if creds is None else f"unauthorized: access denied by {challenge.realm}")
        if response.status_code >= 400:
            raise RegistryError(
                f"token server {challenge.realm}: {response.status_code}: {response.text[:300]}"
            )
        try:
            token = auth.token_from_response(response.content)
        except ValueError as e:
            raise RegistryError(f"token server {challenge.realm}: {e}") from e
        with self._lock:
            self._authorization = f"Bearer {token}"

    # ---- registry operations -----------------------------------------------------------
    def get_manifest(self) -> bytes:
        response = self.request("GET", self.manifest_url(), headers={"Accept": MANIFEST_MEDIA_TYPE})
        return response.content

    def blob_size(self, digest: str) -> int | None:
        """HEAD the blob, following redirects (to a CDN too, without credentials, as Go's client
        does): its Content-Length, or None when nobody says."""
        url = self.blob_url(digest)
        for _ in range(_MAX_REDIRECTS):
            try:
                response = self.request("HEAD", url)
            except RegistryError:
                if self._is_registry(url):
                    raise
                return None  # a CDN URL signed for GET may refuse HEAD: the manifest's size will do
            if response.status_code not in _REDIRECTS:
                length = response.headers.get("content-length", "")
                return int(length) if length.isdigit() and response.status_code == 200 else None
            url = urljoin(url, response.headers.get("location", ""))
        raise RegistryError(f"maximum redirects exceeded ({_MAX_REDIRECTS}) for {digest}")

    def has_blob(self, digest: str) -> bool:
        try:
            self.request("HEAD", self.blob_url(digest))
        except NotFound:
            return False
        return True

    def direct_url(self, digest: str) -> str:
        """Where the blob's bytes really are: same-host redirects are followed, the first
        redirect to another host (a CDN) is used as is, as Ollama does."""
        url = self.blob_url(digest)
        for _ in range(_MAX_REDIRECTS):
            # One byte: a registry that serves blobs itself must not start sending the whole blob.
            response = self.request("GET", url, headers={"Range": "bytes=0-0"}, stream=True)
            response.close()
            if response.status_code not in _REDIRECTS:
                return url
            location: str = urljoin(url, response.headers.get("location", ""))
            if urlsplit(location).hostname != urlsplit(url).hostname:
                return location
            url = location
        raise RegistryError(f"maximum redirects exceeded ({_MAX_REDIRECTS}) for {digest}")

    def open_range(self, url: str, start: int, end: int) -> httpx.Response:
        """A streaming GET of bytes ``[start, end)``; the caller retries, so one attempt here."""
        return self.request(
            "GET", url, headers={"Range": f"bytes={start}-{end - 1}"}, attempts=1, stream=True
        )

    def put_manifest(self, data: bytes, media_type: str = MANIFEST_MEDIA_TYPE) -> None:
        self.request("PUT", self.manifest_url(), headers={"Content-Type": media_type}, body=data)
