"""The digest-addressed model store, laid out exactly like Ollama's.

::

    <root>/manifests/<host>/<namespace>/<model>/<tag>   Docker v2 manifest (JSON)
    <root>/blobs/sha256-<64 hex>                        content-addressed layers

Every write goes to a temporary file in the same directory, is fsynced and then renamed
into place, so a crash (or ``kill -9``) leaves either the old file or the new one, never a
half-written one.  Temporary files carry the ``.tmp-`` prefix (or are hidden ``.*.partial`` files from the
quantizer) and are removed at start-up.
Blobs are verified against their digest before they are admitted; a manifest is written
only after all of its blobs exist.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from llamita.server.gocompat import json as gojson

from .names import Name, from_path_parts
from .state import InFlight, NameLocks, Resolved

MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
MEDIA_PREFIX = "application/vnd.ollama.image."

_DIGEST = re.compile(r"^sha256[:-]([0-9a-fA-F]{64})$")
_TMP_PREFIX = ".tmp-"
_CHUNK = 1 << 20


class StoreError(Exception):
    """Base class for store failures that are the caller's fault or the disk's."""


class InvalidDigest(StoreError):
    """Raised for a digest that is not ``sha256:<64 hex>``."""

    def __init__(self) -> None:
        super().__init__("invalid digest format")


class DigestMismatch(StoreError):
    """Raised when content does not hash to the digest it was announced with."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f'digest mismatch, expected "{expected}", got "{actual}"')
        self.expected, self.actual = expected, actual


class BlobNotFound(StoreError):
    """Raised when a layer refers to a blob that is not in the store."""

    def __init__(self, digest: str) -> None:
        super().__init__(f'blob "{digest}" not found')
        self.digest = digest


class DiskFull(StoreError):
    """Raised when the disk fills while writing; the partial file has been removed."""

    def __init__(self) -> None:
        super().__init__("no space left on device while writing to the model store")


def normalize_digest(digest: str) -> str:
    """``sha256-<hex>`` or ``sha256:<hex>`` → ``sha256:<lowercase hex>``."""
    m = _DIGEST.match(digest or "")
    if not m:
        raise InvalidDigest()
    return "sha256:" + m.group(1).lower()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


@dataclass
class Layer:
    """One manifest layer (or the config); ``extra`` keeps fields we do not interpret."""

    media_type: str
    digest: str
    size: int
    from_: str = ""
    name: str = ""

    def to_json(self) -> gojson.Struct:
        out = gojson.Struct(mediaType=self.media_type, digest=self.digest, size=self.size)
        if self.from_:
            out["from"] = self.from_
        if self.name:
            out["name"] = self.name
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Layer:
        return cls(
            d.get("mediaType", ""),
            d.get("digest", ""),
            int(d.get("size", 0)),
            d.get("from", ""),
            d.get("name", ""),
        )


@dataclass
class Manifest:
    """A parsed manifest plus the facts Ollama derives from the file itself."""

    name: Name
    config: Layer
    layers: list[Layer]
    digest: str  # sha256 hex of the manifest file's bytes, no prefix (as /api/tags shows)
    modified: float
    raw: bytes = field(repr=False, default=b"")

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers) + self.config.size

    def layers_of(self, kind: str) -> list[Layer]:
        return [layer for layer in self.layers if layer.media_type == MEDIA_PREFIX + kind]

    def layer(self, kind: str) -> Layer | None:
        found = self.layers_of(kind)
        return found[-1] if found else None


def manifest_bytes(config: Layer, layers: list[Layer]) -> bytes:
    """The manifest exactly as Ollama's ``json.NewEncoder(f).Encode(Manifest{...})``."""
    return gojson.encode(
        gojson.Struct(
            schemaVersion=2,
            mediaType=MANIFEST_MEDIA_TYPE,
            config=config.to_json(),
            layers=[layer.to_json() for layer in layers],
        )
    )


class Store:
    """Blobs and manifests under one root; safe for concurrent use from threads."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self.manifests = self.root / "manifests"
        self._lock = threading.RLock()
        # In memory only, shared by every request that uses this store (see state.py).
        self.name_locks = NameLocks()
        self.resolved = Resolved()
        self.in_flight = InFlight()

    # ---- paths and start-up -------------------------------------------------------------
    def ensure(self) -> None:
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.manifests.mkdir(parents=True, exist_ok=True)

    def blob_path(self, digest: str) -> Path:
        return self.blobs / normalize_digest(digest).replace(":", "-")

    def manifest_path(self, name: Name) -> Path:
        return self.manifests.joinpath(*name.parts)

    def clean_temporary(self) -> int:
        """Remove temp files a crashed writer left behind; returns how many."""
        removed = 0
        for directory in (self.blobs, self.manifests):
            if not directory.exists():
                continue
            for path in directory.rglob(".*"):
                if not (path.name.startswith(_TMP_PREFIX) or path.name.endswith(".partial")):
                    continue
                with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                    path.unlink()
                    removed += 1
        return removed

    def prune(self, min_age: float = 3600.0) -> list[str]:
        """Delete blobs no manifest references (older than ``min_age`` s), Ollama-style."""
        referenced = self.referenced_digests()
        removed = []
        now = time.time()
        with self._lock:
            for path in self.blobs.glob("sha256-*"):
                m = _DIGEST.match(path.name)
                if not m:
                    continue
                digest = "sha256:" + m.group(1).lower()
                if digest in referenced:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    if now - path.stat().st_mtime >= min_age:
                        path.unlink()
                        removed.append(digest)
        self._prune_dirs(self.manifests)
        return removed

    # ---- atomic writes -----------------------------------------------------------------
    def _atomic_write(self, path: Path, chunks: Iterable[bytes]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            fsync_dir(path.parent)
        except OSError as e:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if e.errno == errno.ENOSPC:
                raise DiskFull() from e
            raise
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def blob_writer(self) -> BlobWriter:
        """A streaming writer for content whose digest is known only at the end."""
        return BlobWriter(self)

    def write_blob(
        self, chunks: Iterable[bytes], expected: str | None = None, added: list[str] | None = None
    ) -> tuple[str, int]:
        """Stream content into the store; returns (digest, size).

        With ``expected`` the content must hash to it, otherwise nothing is stored and
        :class:`DigestMismatch` is raised.  ``added`` gets the digest when this call created
        the blob, so an operation that fails later can take back exactly what it added.
        """
        writer = self.blob_writer()
        try:
            for chunk in chunks:
                writer.write(chunk)
            digest, size = writer.commit(expected)
            if added is not None and writer.created:
                added.append(digest)
            return digest, size
        finally:
            writer.abort()

    def write_blob_bytes(self, data: bytes, added: list[str] | None = None) -> Layer:
        digest, size = self.write_blob([data], added=added)
        return Layer("", digest, size)

    def import_file(
        self, path: Path, expected: str | None = None, added: list[str] | None = None
    ) -> tuple[str, int]:
        """Copy a local file into the blob store (verified against ``expected`` if given)."""
        with open(path, "rb") as f:
            return self.write_blob(iter(lambda: f.read(_CHUNK), b""), expected, added)

    def open_blob(self, digest: str) -> IO[bytes]:
        path = self.blob_path(digest)
        if not path.is_file():
            raise BlobNotFound(normalize_digest(digest))
        return open(path, "rb")

    def read_blob(self, digest: str) -> bytes:
        with self.open_blob(digest) as f:
            return f.read()

    def verify_blob(self, digest: str) -> None:
        """Re-hash a blob; a corrupt one is removed so it can be fetched again."""
        path = self.blob_path(digest)
        if not path.is_file():
            raise BlobNotFound(normalize_digest(digest))
        actual = sha256_file(path)
        if actual != normalize_digest(digest):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            raise DigestMismatch(normalize_digest(digest), actual)

    # ---- manifests ---------------------------------------------------------------------
    def write_manifest(self, name: Name, config: Layer, layers: list[Layer]) -> Manifest:
        for layer in [config, *layers]:
            if not self.has_blob(layer.digest):
                raise BlobNotFound(layer.digest)
        data = manifest_bytes(config, layers)
        with self._lock:
            self._atomic_write(self.manifest_path(name), [data])
        return self._load(name, self.manifest_path(name))

    def write_manifest_raw(self, name: Name, data: bytes) -> Manifest:
        """Store a pulled manifest byte-for-byte as received."""
        with self._lock:
            self._atomic_write(self.manifest_path(name), [data])
        return self._load(name, self.manifest_path(name))

    def _load(self, name: Name, path: Path) -> Manifest:
        raw = path.read_bytes()
        doc = json.loads(raw)
        return Manifest(
            name=name,
            config=Layer.from_json(doc.get("config") or {}),
            layers=[Layer.from_json(d) for d in doc.get("layers") or []],
            digest=hashlib.sha256(raw).hexdigest(),
            modified=path.stat().st_mtime,
            raw=raw,
        )

    def resolve(self, name: Name) -> Name | None:
        """The stored spelling of ``name`` (case-insensitive match), or None."""
        exact = self.manifest_path(name)
        if exact.is_file():
            return name
        current = self.manifests
        parts = []
        for wanted in name.parts:
            if not current.is_dir():
                return None
            match = next((p for p in current.iterdir() if p.name.lower() == wanted.lower()), None)
            if match is None:
                return None
            parts.append(match.name)
            current = match
        return Name(*parts, scheme=name.scheme) if current.is_file() else None

    def get(self, name: Name) -> Manifest | None:
        stored = self.resolve(name)
        if stored is None:
            return None
        try:
            return self._load(stored, self.manifest_path(stored))
        except (OSError, ValueError):
            return None

    def iter_manifests(self) -> Iterator[Manifest]:
        if not self.manifests.is_dir():
            return
        for path in self.manifests.glob("*/*/*/*"):
            if not path.is_file() or path.name.startswith(_TMP_PREFIX):
                continue
            name = from_path_parts(path.relative_to(self.manifests).parts)
            if name is None:
                continue
            with contextlib.suppress(OSError, ValueError):
                yield self._load(name, path)

    def referenced_digests(self) -> set[str]:
        refs: set[str] = set()
        for m in self.iter_manifests():
            refs.update(layer.digest for layer in [m.config, *m.layers] if layer.digest)
        return refs

    def copy(self, source: Name, destination: Name) -> None:
        src = self.get(source)
        if src is None:
            raise FileNotFoundError(str(source))
        dest = self.resolve(destination) or destination
        with self._lock:
            self._atomic_write(self.manifest_path(dest), [src.raw])

    def delete(self, name: Name, prune_blobs: bool = True) -> Manifest:
        """Remove a manifest and, unless told not to, the blobs nothing else references."""
        with self._lock:
            manifest = self.get(name)
            if manifest is None:
                raise FileNotFoundError(str(name))
            self.manifest_path(manifest.name).unlink()
            self._prune_dirs(self.manifests)
            if prune_blobs:
                self.remove_unreferenced([manifest.config, *manifest.layers])
        return manifest

    def remove_unreferenced(self, layers: Iterable[Layer]) -> None:
        """Delete the given layers' blobs when no manifest refers to them any more."""
        with self._lock:
            in_use = self.referenced_digests()
            for layer in layers:
                if layer.digest and layer.digest not in in_use:
                    with contextlib.suppress(FileNotFoundError, InvalidDigest):
                        self.blob_path(layer.digest).unlink()

    def _prune_dirs(self, top: Path) -> None:
        if not top.is_dir():
            return
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda t: -len(t[0])):
            if Path(dirpath) != top:
                with contextlib.suppress(OSError):
                    os.rmdir(dirpath)


class BlobWriter:
    """Writes one blob through a temp file; ``commit`` verifies and renames, ``abort`` cleans up.

    Used for uploads, where the content arrives in chunks from the network: whatever
    happens (mismatch, disk full, client gone) the temp file is removed and the store is
    unchanged.
    """

    def __init__(self, store: Store) -> None:
        store.blobs.mkdir(parents=True, exist_ok=True)
        self._store = store
        self._hash = hashlib.sha256()
        self.size = 0
        self.created = False  # set by commit when the blob did not exist before
        fd, self._tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=store.blobs)
        self._file: IO[bytes] | None = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        assert self._file is not None, "writer already finished"
        self._hash.update(chunk)
        self.size += len(chunk)
        try:
            self._file.write(chunk)
        except OSError as e:
            self.abort()
            if e.errno == errno.ENOSPC:
                raise DiskFull() from e
            raise

    def commit(self, expected: str | None = None) -> tuple[str, int]:
        assert self._file is not None, "writer already finished"
        digest = "sha256:" + self._hash.hexdigest()
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            if expected is not None and digest != normalize_digest(expected):
                raise DigestMismatch(normalize_digest(expected), digest)
            target = self._store.blob_path(digest)
            if target.exists():
                _touch(target)
            else:
                os.chmod(self._tmp, 0o644)
                os.replace(self._tmp, target)
                fsync_dir(self._store.blobs)
                self.created = True
        except OSError as e:
            self.abort()
            if e.errno == errno.ENOSPC:
                raise DiskFull() from e
            raise
        finally:
            self.abort()
        return digest, self.size

    def abort(self) -> None:
        """Idempotent: close and delete the temp file if it is still there."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)


def _touch(path: Path) -> None:
    now = time.time()
    with contextlib.suppress(OSError):
        os.utime(path, (now, now))


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (best effort: some filesystems refuse)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
