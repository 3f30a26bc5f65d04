from __future__ import annotations

import errno
import hashlib
from pathlib import Path

import pytest

from llamita.server.store.blobs import (
    CONFIG_MEDIA_TYPE,
    DigestMismatch,
    DiskFull,
    InvalidDigest,
    Layer,
    Store,
    manifest_bytes,
    normalize_digest,
)
from llamita.server.store.names import require_name


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _model(store: Store, name: str, *texts: bytes) -> None:
    layers = []
    for text in texts:
        digest, size = store.write_blob([text])
        layers.append(Layer("application/vnd.ollama.image.system", digest, size))
    digest, size = store.write_blob([b'{"config":"%s"}\n' % name.encode()])
    store.write_manifest(require_name(name), Layer(CONFIG_MEDIA_TYPE, digest, size), layers)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("sha256:" + "a" * 64, True),
        ("sha256-" + "A" * 64, True),
        ("sha256:" + "a" * 63, False),
        ("md5:" + "a" * 64, False),
        ("sha256:" + "g" * 64, False),
        ("", False),
        ("sha256:../../etc/passwd", False),
    ],
    ids=["colon", "dash-upper", "short", "algo", "non-hex", "empty", "traversal"],
)
def test_digest_format(text: str, ok: bool) -> None:
    if ok:
        assert normalize_digest(text) == "sha256:" + text[7:].lower()
    else:
        with pytest.raises(InvalidDigest, match="invalid digest format"):
            normalize_digest(text)


def test_write_blob_verifies_digest(store: Store) -> None:
    data = b"hello"
    with pytest.raises(DigestMismatch, match='expected "sha256:0{64}", got "' + _sha(data)):
        store.write_blob([data], expected="sha256:" + "0" * 64)
    assert list(store.blobs.iterdir()) == []  # nothing stored, no temp left
    digest, size = store.write_blob([b"hel", b"lo"], expected=_sha(data))
    assert (digest, size) == (_sha(data), 5)
    assert store.blob_path(digest).read_bytes() == data


def test_manifest_bytes_are_go_encoded(store: Store) -> None:
    config = Layer(CONFIG_MEDIA_TYPE, "sha256:" + "1" * 64, 10)
    layers = [Layer("application/vnd.ollama.image.model", "sha256:" + "2" * 64, 20, "x:latest")]
    assert manifest_bytes(config, layers) == (
        b'{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
        b'"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:'
        + b"1" * 64
        + b'","size":10},"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:'
        + b"2" * 64
        + b'","size":20,"from":"x:latest"}]}\n'
    )


def test_manifest_refuses_missing_blobs(store: Store) -> None:
    from llamita.server.store.blobs import BlobNotFound

    with pytest.raises(BlobNotFound):
        store.write_manifest(require_name("m"), Layer(CONFIG_MEDIA_TYPE, "sha256:" + "3" * 64, 1), [])
    assert not store.manifest_path(require_name("m")).exists()


def test_case_insensitive_resolve_and_copy(store: Store) -> None:
    _model(store, "Team/Coder:V1", b"sys")
    found = store.get(require_name("team/coder:v1"))
    assert found is not None and found.name.shortest == "Team/Coder:V1"
    store.copy(require_name("team/CODER:v1"), require_name("other"))
    copy = store.get(require_name("other"))
    assert copy is not None and copy.raw == found.raw and copy.digest == found.digest


def test_delete_removes_only_unshared_blobs(store: Store) -> None:
    _model(store, "a", b"shared", b"only-a")
    _model(store, "b", b"shared")
    store.delete(require_name("a"))
    assert not store.has_blob(_sha(b"only-a"))
    assert store.has_blob(_sha(b"shared"))
    assert store.get(require_name("a")) is None
    store.delete(require_name("b"))
    assert not store.has_blob(_sha(b"shared"))
    assert list(store.manifests.iterdir()) == []  # empty directories pruned


def test_delete_keeps_blobs_when_asked(store: Store) -> None:
    _model(store, "a", b"keep")
    store.delete(require_name("a"), prune_blobs=False)
    assert store.has_blob(_sha(b"keep"))


def test_clean_temporary_and_prune(store: Store) -> None:
    (store.blobs / ".tmp-abc").write_bytes(b"partial")
    (store.manifests / "registry.ollama.ai").mkdir()
    (store.manifests / "registry.ollama.ai" / ".tmp-x").write_bytes(b"{")
    assert store.clean_temporary() == 2
    _model(store, "a", b"used")
    orphan, _ = store.write_blob([b"orphan"])
    assert store.prune(min_age=0) == [orphan]
    assert store.has_blob(_sha(b"used"))


def test_disk_full_leaves_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that hits ENOSPC removes its temp file and raises DiskFull."""

    class FullFile:
        def __init__(self, f):
            self._f = f

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self._f, name)

    writer = store.blob_writer()
    writer._file = FullFile(writer._file)
    with pytest.raises(DiskFull, match="no space left"):
        writer.write(b"x" * 10)
    assert [p.name for p in store.blobs.iterdir()] == []


def test_disk_full_on_real_small_filesystem(tmp_path: Path) -> None:
    """A real size-limited file (RLIMIT_FSIZE) fails the write part-way: nothing stays behind."""
    import subprocess
    import sys

    root = tmp_path / "models"
    script = f"""
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, 1 << 16))
from llamita.server.store.blobs import Store, DiskFull
s = Store({str(root)!r}); s.ensure()
try:
    s.write_blob([b"x" * (1 << 20)])
except DiskFull as e:
    print("diskfull", e)
except OSError as e:
    print("oserror", e.errno)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # RLIMIT_FSIZE gives EFBIG, the tmpfs/quota case gives ENOSPC: either way nothing stays behind.
    assert out.stdout.split()[0] in ("diskfull", "oserror")
    assert list((root / "blobs").iterdir()) == []
