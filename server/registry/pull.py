"""``pull``: fetch a model's manifest and blobs into the store, reporting Ollama's progress.

Progress events, in order (``digest``/``total``/``completed`` are left out when empty or
zero, as Go's ``omitempty`` does)::

    {"status": "pulling manifest"}
    {"status": "pulling 6a0746a1ec1a", "digest": "sha256:6a07…", "total": 4661211808, "completed": 12345}
    …  one line per layer every 60 ms while it downloads (config last); a blob already in
       the store is reported once, complete
    {"status": "verifying sha256 digest"}
    {"status": "writing manifest"}
    {"status": "removing unused layers"}       only when an older version left blobs behind
    {"status": "success"}

The manifest is written only after every blob it names is in the store and verified, and
it is written atomically, byte-for-byte as the registry sent it.  Free disk space is
checked against the blobs still missing before anything is downloaded.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from llamita.server import config
from llamita.server.store.blobs import InvalidDigest, Layer, Store, normalize_digest
from llamita.server.store.names import Name

from . import parts
from .client import MANIFEST_MEDIA_TYPE, Policy, RegistryClient
from .download import BlobDownload, Downloads
from .errors import NotEnoughSpace, RegistryError

Progress = dict[str, Any]
TICK = 0.06  # Ollama reports download progress every 60 ms

_INDEX_TYPES = (
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)


def progress(status: str, digest: str = "", total: int = 0, completed: int = 0) -> Progress:
    """An api.ProgressResponse as Go encodes it (zero fields omitted)."""
    event: Progress = {"status": status}
    if digest:
        event["digest"] = digest
    if total:
        event["total"] = total
    if completed:
        event["completed"] = completed
    return event


def parse_manifest(data: bytes) -> tuple[Layer | None, list[Layer]]:
    """The config and layers of a Docker v2 manifest; RegistryError if it is not one."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise RegistryError(f"invalid manifest: {e}") from e
    if not isinstance(doc, dict):
        raise RegistryError("invalid manifest: not a JSON object")
    media_type = doc.get("mediaType", MANIFEST_MEDIA_TYPE)
    if media_type in _INDEX_TYPES or "manifests" in doc:
        raise RegistryError(f"unsupported manifest type {media_type}: not an Ollama model")
    layers_doc = doc.get("layers")
    if not isinstance(layers_doc, list) or not all(isinstance(d, dict) for d in layers_doc):
        raise RegistryError("invalid manifest: no layers")
    try:
        layers = [Layer.from_json(d) for d in layers_doc]
        config_doc = doc.get("config")
        config_layer = Layer.from_json(config_doc) if isinstance(config_doc, dict) else None
        for layer in [*layers, *([config_layer] if config_layer and config_layer.digest else [])]:
            normalize_digest(layer.digest)
    except (TypeError, ValueError) as e:
        raise RegistryError(f"invalid manifest: {e}") from e
    except InvalidDigest as e:
        raise RegistryError(f"invalid manifest: {e}") from e
    if config_layer is not None and not config_layer.digest:
        config_layer = None
    return config_layer, layers


def human_size(n: int) -> str:
    for limit, unit in ((1000**4, "TB"), (1000**3, "GB"), (1000**2, "MB"), (1000, "KB")):
        if n >= limit:
            return f"{n / limit:.1f} {unit}"
    return f"{n} B"


def free_space(path: Path) -> int:
    return shutil.disk_usage(path).free


def check_space(store: Store, name: Name, layers: list[Layer], free: Callable[[Path], int]) -> None:
    """Refuse a pull whose missing blobs do not fit (already-downloaded partial bytes count)."""
    needed = 0
    seen: set[str] = set()
    for layer in layers:
        digest = normalize_digest(layer.digest)
        if digest in seen or store.has_blob(digest):
            continue
        seen.add(digest)
        needed += max(0, layer.size - parts.bytes_on_disk(store.blob_path(digest)))
    store.ensure()
    available = free(store.blobs)
    if needed > available:
        raise NotEnoughSpace(
            f"not enough disk space to pull {name.shortest}: it needs {human_size(needed)} more, "
            f"{human_size(available)} is free in {store.blobs}"
        )


def _wait(job: BlobDownload) -> Iterator[Progress]:
    status = f"pulling {job.short}"
    while not job.finished.wait(TICK):
        yield progress(status, job.digest, job.total, job.completed)
    if job.error is not None:
        raise job.error
    yield progress(status, job.digest, job.total, job.completed)


def pull(
    store: Store,
    name: Name,
    insecure: bool = False,
    *,
    policy: Policy | None = None,
    transport: httpx.BaseTransport | None = None,
    free: Callable[[Path], int] = free_space,
    prune: bool | None = None,
) -> Iterator[Progress]:
    """Pull ``name`` (already resolved to the stored casing) into ``store``; yields progress."""
    client = RegistryClient(name, insecure, policy, transport)
    prune = not config.no_prune() if prune is None else prune
    previous = store.get(name)
    downloads = Downloads(store)
    jobs: list[BlobDownload] = []
    try:
        yield progress("pulling manifest")
        try:
            raw = client.get_manifest()
            config_layer, layers = parse_manifest(raw)
        except RegistryError as e:
            raise e.with_context("pull model manifest") from e
        wanted = [*layers, *([config_layer] if config_layer else [])]
        check_space(store, name, wanted, free)

        for layer in wanted:
            digest = normalize_digest(layer.digest)
            if store.has_blob(digest):
                size = store.blob_path(digest).stat().st_size
                yield progress(f"pulling {digest[7:19]}", digest, size, size)
                continue
            job = downloads.acquire(digest, layer.size, client)
            jobs.append(job)
            yield from _wait(job)

        yield progress("verifying sha256 digest")
        for job in jobs:
            job.commit()

        yield progress("writing manifest")
        for layer in wanted:
            if not store.has_blob(layer.digest):
                raise RegistryError(f"blob {layer.digest} disappeared before the manifest was written")
        store.write_manifest_raw(name, raw)

        if prune and previous is not None:
            kept = {normalize_digest(layer.digest) for layer in wanted}
            unused = [
                old for old in [previous.config, *previous.layers] if old.digest and old.digest not in kept
            ]
            if unused:
                yield progress("removing unused layers")
                store.remove_unreferenced(unused)
        yield progress("success")
    finally:
        for job in jobs:
            downloads.release(job)
        client.close()
