"""pull.py: manifests, Ollama's progress events, the disk-space check and pruning."""

from __future__ import annotations

import json

import pytest

from llamita.server.registry import parts
from llamita.server.registry.errors import NotEnoughSpace, RegistryError
from llamita.server.registry.pull import parse_manifest, progress, pull
from llamita.server.registry.push import push
from llamita.server.store.blobs import Store

from .regkit import Registry, drain, leave_partial, name_via, published, store_files, synthetic_model


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


def test_pull_without_prune_keeps_the_older_blobs(store: Store, registry: Registry, tmp_path) -> None:
    source = Store(tmp_path / "source")
    name, first = synthetic_model(source, f"{registry.host}/team/model:1", 200_000, seed=1)
    drain(push(source, name, insecure=True))
    drain(pull(store, name, insecure=True))
    _, second = synthetic_model(source, str(name), 200_000, seed=2)
    drain(push(source, name, insecure=True))
    statuses = [e["status"] for e in drain(pull(store, name, insecure=True, prune=False))]
    assert "removing unused layers" not in statuses and statuses[-1] == "success"
    assert store.has_blob(first) and store.has_blob(second)


def test_a_second_pull_moves_no_blob_bytes(store: Store, registry: Registry, proxy, tmp_path) -> None:
    digest = published(registry, tmp_path, 2_000_000)
    counting = proxy(registry.port)
    drain(pull(store, name_via(counting.host), insecure=True))
    first = counting.blob_bytes()
    assert first >= 2_000_000
    events = drain(pull(store, name_via(counting.host), insecure=True))
    assert counting.blob_bytes() == first  # nothing more crossed the wire
    layers = [e for e in events if "digest" in e]
    assert len(layers) == 2 and all(e["completed"] == e["total"] for e in layers)
    assert [e["status"] for e in events if "digest" not in e] == [
        "pulling manifest",
        "verifying sha256 digest",
        "writing manifest",
        "success",
    ]
    store.verify_blob(digest)


def test_disk_space_check_counts_a_partial_already_on_disk(
    store: Store, registry: Registry, proxy, tmp_path
) -> None:
    size = 8_000_000
    digest = published(registry, tmp_path, size)
    data = registry.blob_data(digest).read_bytes()
    plan = parts.plan(size, parts=1, min_size=size)
    plan[0].completed = 6_000_000
    blob = leave_partial(store, digest, data, plan)
    counting = proxy(registry.port)

    with pytest.raises(NotEnoughSpace, match=r"it needs (1\.9|2\.0) MB more, 1\.0 MB is free"):
        drain(pull(store, name_via(counting.host), insecure=True, free=lambda path: 1_000_000))
    assert parts.load(blob, size) == plan  # refused before touching anything

    # 3 MB free would not hold the blob, but it holds what is missing of it.
    events = drain(pull(store, name_via(counting.host), insecure=True, free=lambda path: 3_000_000))
    assert events[-1] == {"status": "success"}
    assert 2_000_000 <= counting.blob_bytes() <= 2_001_000
    store.verify_blob(digest)
