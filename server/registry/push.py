"""``push``: upload a stored model's blobs and manifest to its registry, with Ollama's progress.

Progress events, in order::

    {"status": "retrieving manifest"}
    {"status": "pushing 6a0746a1ec1a", "digest": "sha256:6a07…", "total": 4661211808, "completed": 123}
    …  per layer (config last); a blob the registry already has (HEAD 200) is reported once, complete
    {"status": "pushing manifest"}
    {"status": "success"}

A missing blob is uploaded through an upload session: ``POST …/blobs/uploads/`` (with
``?mount=<digest>&from=<repo>`` when the layer came from another model on the same
registry; 201 means the registry linked it without an upload), then either one
``PUT <location>?digest=…`` carrying the blob (small blobs) or ``PATCH`` chunks followed by
an empty ``PUT <location>?digest=…``.  A transient failure restarts that blob's session
with backoff.  The manifest goes last, as the exact bytes in the store (so a pull gets
back a manifest with the same digest), with Docker's v2 manifest content type.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterator
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import httpx

from llamita.server.store.blobs import Layer, Store
from llamita.server.store.names import Name, parse_name

from .client import Policy, RegistryClient, is_transient, repository
from .errors import NotFound, RegistryError, RegistryUnavailable
from .pull import TICK, Progress, progress

log = logging.getLogger("llamita.registry")
_FILE_CHUNK = 1 << 20


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


class BlobUpload:
    """Uploads one blob in a background thread so the caller can report progress."""

    def __init__(self, client: RegistryClient, store: Store, layer: Layer) -> None:
        self.client = client
        self.layer = layer
        self.path = store.blob_path(layer.digest)
        self.total = self.path.stat().st_size
        self.done_bytes = 0  # confirmed by the registry
        self.in_flight = 0  # sent in the request under way
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"push {layer.digest[7:19]}", daemon=True)

    @property
    def completed(self) -> int:
        return min(self.done_bytes + self.in_flight, self.total)

    def start(self) -> BlobUpload:
        self.thread.start()
        return self

    def _run(self) -> None:
        policy = self.client.policy
        failures = 0
        best = 0  # the furthest any session got, as confirmed by the registry
        try:
            while True:
                try:
                    self._upload()
                    return
                except (RegistryUnavailable, httpx.HTTPError) as e:
                    if isinstance(e, httpx.HTTPError) and not is_transient(e):
                        raise RegistryError(f"uploading {self.layer.digest[7:19]}: {e}") from e
                    # Every retry starts a new session at byte 0, so bytes merely sent are not
                    # progress: only a session the registry confirmed further than any before is.
                    moved = self.done_bytes > best
                    best = max(best, self.done_bytes)
                    failures = 0 if moved else failures + 1
                    if failures >= policy.transfer_attempts:
                        raise RegistryUnavailable(f"uploading {self.layer.digest[7:19]} failed: {e}") from e
                    log.info(
                        "upload of %s failed (%s); starting its session again", self.layer.digest[7:19], e
                    )
                    self.done_bytes = self.in_flight = 0
                    self.client.sleep(policy.delay(max(failures, 1)))
        except BaseException as e:
            self.error = e
        finally:
            self.finished.set()

    def _body(self, offset: int, length: int) -> Iterator[bytes]:
        self.in_flight = 0
        with open(self.path, "rb") as f:
            f.seek(offset)
            left = length
            while left > 0:
                chunk = f.read(min(_FILE_CHUNK, left))
                if not chunk:
                    raise RegistryError(f"blob {self.layer.digest} is shorter than its size")
                left -= len(chunk)
                self.in_flight += len(chunk)
                yield chunk

    def _mount_from(self) -> str:
        """``namespace/model`` of the layer's source model when it lives on the same registry."""
        if not self.layer.from_:
            return ""
        source = parse_name(self.layer.from_)
        if not source.is_valid or source.host.lower() != self.client.host.lower():
            return ""
        return repository(source)

    def _upload(self) -> None:
        client, digest = self.client, self.layer.digest
        url = client.upload_url()
        source = self._mount_from()
        if source:
            url = _with_query(url, mount=digest, **{"from": source})
        started = client.request("POST", url, attempts=1)
        if started.status_code == 201:  # cross-repository mount: nothing to send
            self.done_bytes = self.total
            return
        location = started.headers.get("docker-upload-location") or started.headers.get("location")
        if not location:
            raise RegistryError(f"registry {client.host} did not return an upload location")
        location = urljoin(url, location)
        octet = {"Content-Type": "application/octet-stream"}
        if self.total <= client.policy.monolithic_limit:
            headers = {**octet, "Content-Length": str(self.total)}
            client.request(
                "PUT",
                _with_query(location, digest=digest),
                headers=headers,
                body=lambda: self._body(0, self.total),
                attempts=1,
            )
            self.done_bytes, self.in_flight = self.total, 0
            return
        offset = 0
        while offset < self.total:
            length = min(client.policy.upload_chunk, self.total - offset)
            headers = {
                **octet,
                "Content-Length": str(length),
                "Content-Range": f"{offset}-{offset + length - 1}",
            }
            sent = client.request(
                "PATCH",
                location,
                headers=headers,
                body=functools.partial(self._body, offset, length),
                attempts=1,
            )
            location = urljoin(
                location,
                sent.headers.get("docker-upload-location") or sent.headers.get("location") or location,
            )
            offset += length
            self.done_bytes, self.in_flight = offset, 0
        client.request(
            "PUT", _with_query(location, digest=digest), headers={**octet, "Content-Length": "0"}, attempts=1
        )


def _wait(upload: BlobUpload) -> Iterator[Progress]:
    status = f"pushing {upload.layer.digest[7:19]}"
    while not upload.finished.wait(TICK):
        yield progress(status, upload.layer.digest, upload.total, upload.completed)
    if upload.error is not None:
        raise upload.error
    yield progress(status, upload.layer.digest, upload.total, upload.total)


def push(
    store: Store,
    name: Name,
    insecure: bool = False,
    *,
    policy: Policy | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Iterator[Progress]:
    """Push the stored model ``name`` to the registry its host names; yields progress."""
    yield progress("retrieving manifest")
    client = RegistryClient(name, insecure, policy, transport)
    try:
        manifest = store.get(name)
        if manifest is None:
            yield progress("couldn't retrieve manifest")
            raise NotFound(f"model '{name.shortest}' not found")
        layers = [*manifest.layers, *([manifest.config] if manifest.config.digest else [])]
        for layer in layers:
            if not store.has_blob(layer.digest):
                raise RegistryError(f'blob "{layer.digest}" of {name.shortest} is missing from the store')
        for layer in layers:
            if client.has_blob(layer.digest):
                yield progress(f"pushing {layer.digest[7:19]}", layer.digest, layer.size, layer.size)
                continue
            yield from _wait(BlobUpload(client, store, layer).start())
        yield progress("pushing manifest")
        client.put_manifest(manifest.raw)
        yield progress("success")
    finally:
        client.close()
