"""pull.py: manifests, Ollama's progress events, the disk-space check and pruning."""

from __future__ import annotations

import json

import pytest

from llamita.server.registry.errors import NotEnoughSpace, RegistryError
from llamita.server.registry.pull import parse_manifest, progress, pull
from llamita.server.registry.push import push
from llamita.server.store.blobs import Store

from .regkit import Registry, drain, store_files, synthetic_model


def test_parse_manifest_rejects_what_is_not_an_ollama_model() -> None:
    good = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "x", "digest": "sha256:" + "c" * 64, "size": 3},
        "layers": [
            {"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:" + "d" * 64, "size": 9}
        ],
    }
    config, layers = parse_manifest(json.dumps(good).encode())
    assert config is not None and config.size == 3 and [layer.size for layer in layers] == [9]
    index = {"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}
    with pytest.raises(RegistryError, match="unsupported manifest type"):
        parse_manifest(json.dumps(index).encode())
    with pytest.raises(RegistryError, match="invalid manifest: invalid digest format"):
        parse_manifest(json.dumps({**good, "layers": [{"digest": "sha256:../../etc", "size": 1}]}).encode())
    with pytest.raises(RegistryError, match="invalid manifest"):
        parse_manifest(b"<html>")


def test_progress_omits_empty_fields_like_go() -> None:
    assert progress("pulling manifest") == {"status": "pulling manifest"}
    assert progress("pulling abc", "sha256:abc", 10, 0) == {
        "status": "pulling abc",
        "digest": "sha256:abc",
        "total": 10,
    }


# ---- against a real registry -----------------------------------------------------------------
def test_not_enough_disk_space_fails_before_writing(store: Store, registry: Registry, tmp_path) -> None:
    source = Store(tmp_path / "source")
    name, _ = synthetic_model(source, f"{registry.host}/team/model:1", 5_000_000)
    drain(push(source, name, insecure=True))
    with pytest.raises(NotEnoughSpace) as e:
        drain(pull(store, name, insecure=True, free=lambda path: 1_000_000))
    assert str(e.value).startswith(
        f"not enough disk space to pull {name.shortest}: it needs 5.0 MB more, 1.0 MB"
    )
    assert store_files(store) == set()


def test_pull_replaces_an_older_version_and_prunes_its_blobs(
    store: Store, registry: Registry, tmp_path
) -> None:
    source = Store(tmp_path / "source")
    name, first = synthetic_model(source, f"{registry.host}/team/model:1", 200_000, seed=1)
    drain(push(source, name, insecure=True))
    drain(pull(store, name, insecure=True))
    _, second = synthetic_model(source, str(name), 200_000, seed=2)
    drain(push(source, name, insecure=True))
    statuses = [e["status"] for e in drain(pull(store, name, insecure=True, prune=True))]
    assert statuses[-2:] == ["removing unused layers", "success"]
    assert store.has_blob(second) and not store.has_blob(first)
    stored = store.get(name)
    assert stored is not None and stored.raw == source.get(name).raw  # type: ignore[union-attr]
