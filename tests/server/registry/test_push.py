"""push.py: uploading a stored model's blobs and manifest to a real docker-registry.

A recording proxy in front of the registry shows the upload sessions themselves: one PUT
for a small blob, PATCH chunks then an empty PUT for a big one, a mount instead of an
upload when the layer came from another repository, nothing when the registry has it.
"""

from __future__ import annotations

import hashlib
import threading

import pytest

from llamita.server.registry.client import Policy
from llamita.server.registry.errors import NotFound, RegistryUnavailable
from llamita.server.registry.pull import pull
from llamita.server.registry.push import push
from llamita.server.store.blobs import CONFIG_MEDIA_TYPE, Layer, Store
from llamita.server.store.names import parse_name

from .regkit import MODEL_MEDIA_TYPE, Action, Exchange, Registry, drain, synthetic_model

CHUNKED = Policy(backoff=0.01, monolithic_limit=1_000_000, upload_chunk=400_000)


def uploads(exchanges: list[Exchange]) -> list[tuple[str, str]]:
    """(method, path) of the upload-session requests, in order."""
    return [(e.method, e.path) for e in exchanges if "/blobs/uploads/" in e.path]


def on_registry(registry: Registry, digest: str) -> bool:
    path = registry.blob_data(digest)
    return path.is_file() and "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_not_found_blob_on_push_source(store: Store, registry: Registry) -> None:
    """Pushing a model whose manifest names a blob that is gone fails before any upload."""
    name, digest = synthetic_model(store, f"{registry.host}/team/model:1", 10_000)
    store.blob_path(digest).unlink()
    with pytest.raises(Exception, match="missing from the store"):
        drain(push(store, name, insecure=True))
    with pytest.raises(NotFound):
        drain(pull(Store(store.root.parent / "other"), name, insecure=True))


def test_pushing_a_model_that_is_not_there(store: Store, registry: Registry, proxy) -> None:
    counting = proxy(registry.port)
    events: list[dict[str, object]] = []
    with pytest.raises(NotFound, match=rf"^model '{counting.host}/team/nothing:1' not found$"):
        for event in push(store, parse_name(f"{counting.host}/team/nothing:1"), insecure=True):
            events.append(event)
    assert events == [{"status": "retrieving manifest"}, {"status": "couldn't retrieve manifest"}]
    assert counting.exchanges == []  # nothing was asked of the registry


def test_small_blobs_are_one_put_big_ones_are_chunked(store: Store, registry: Registry, proxy) -> None:
    recording = proxy(registry.port)
    name, digest = synthetic_model(store, f"{recording.host}/team/model:1", 1_500_000)
    events = drain(push(store, name, insecure=True, policy=CHUNKED))
    assert events[-2:] == [{"status": "pushing manifest"}, {"status": "success"}]

    manifest = store.get(name)
    assert manifest is not None
    config = manifest.config.digest
    sent = uploads(recording.exchanges)
    methods = [method for method, _ in sent]
    # The model layer first: a session, four chunks of 400 KB at most, the closing PUT; then the config.
    assert methods == ["POST", "PATCH", "PATCH", "PATCH", "PATCH", "PUT", "POST", "PUT"]
    assert sent[5][1].endswith(f"digest={digest.replace(':', '%3A')}")
    assert sent[7][1].endswith(f"digest={config.replace(':', '%3A')}")
    ranges = [e.headers["content-range"] for e in recording.exchanges if e.method == "PATCH"]
    assert ranges == ["0-399999", "400000-799999", "800000-1199999", "1200000-1499999"]
    assert on_registry(registry, digest) and on_registry(registry, config)

    # The manifest went up byte for byte: a pull gets the same digest back.
    back = Store(store.root.parent / "back")
    drain(pull(back, parse_name(f"{registry.host}/team/model:1"), insecure=True))
    assert back.get(parse_name(f"{registry.host}/team/model:1")).digest == manifest.digest  # type: ignore[union-attr]


def test_a_second_push_uploads_nothing(store: Store, registry: Registry, proxy) -> None:
    name, digest = synthetic_model(store, f"{registry.host}/team/model:1", 300_000)
    drain(push(store, name, insecure=True))
    recording = proxy(registry.port)
    again = parse_name(f"{recording.host}/team/model:1")
    store.copy(name, again)
    events = drain(push(store, again, insecure=True))
    blob_events = [e for e in events if "digest" in e]
    assert len(blob_events) == 2 and all(e["completed"] == e["total"] for e in blob_events)
    assert uploads(recording.exchanges) == []
    assert [e.method for e in recording.exchanges] == ["HEAD", "HEAD", "PUT"]  # two blobs, the manifest
    assert on_registry(registry, digest)


def test_a_layer_from_another_repository_is_mounted_not_uploaded(
    store: Store, registry: Registry, proxy
) -> None:
    base, digest = synthetic_model(store, f"{registry.host}/team/base:1", 2_000_000)
    drain(push(store, base, insecure=True))
    recording = proxy(registry.port)
    manifest = store.get(base)
    assert manifest is not None
    derived = parse_name(f"{recording.host}/team/derived:1")
    config_digest, config_size = store.write_blob([b'{"model_format":"gguf","derived":true}\n'])
    model = manifest.layers[0]
    store.write_manifest(
        derived,
        Layer(CONFIG_MEDIA_TYPE, config_digest, config_size),
        [Layer(MODEL_MEDIA_TYPE, model.digest, model.size, from_=f"{recording.host}/team/base:1")],
    )
    assert drain(push(store, derived, insecure=True))[-1] == {"status": "success"}

    sent = uploads(recording.exchanges)
    mounts = [e for e in recording.exchanges if "mount=" in e.path]
    assert len(mounts) == 1 and mounts[0].status == 201
    assert "from=team%2Fbase" in mounts[0].path and digest.replace(":", "%3A") in mounts[0].path
    assert not [path for method, path in sent if method in ("PUT", "PATCH") and digest[7:] in path]
    assert recording.blob_bytes() == 0
    back = Store(store.root.parent / "back")
    assert drain(pull(back, parse_name(f"{registry.host}/team/derived:1"), insecure=True))[-1] == {
        "status": "success"
    }
    back.verify_blob(digest)


def test_a_transient_failure_starts_the_blobs_session_again(store: Store, registry: Registry, proxy) -> None:
    failed: list[Exchange] = []

    def once(ex: Exchange) -> Action | None:
        if ex.method == "PUT" and "digest=" in ex.path and not failed:
            failed.append(ex)
            return Action(respond=(503, {}, b'{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}'))
        return None

    flaky = proxy(registry.port, once)
    name, digest = synthetic_model(store, f"{flaky.host}/team/model:1", 200_000)
    assert drain(push(store, name, insecure=True, policy=Policy(backoff=0.01)))[-1] == {"status": "success"}
    methods = [method for method, _ in uploads(flaky.exchanges)]
    assert methods == ["POST", "PUT", "POST", "PUT", "POST", "PUT"]  # model twice (503, then 201), config
    assert failed and on_registry(registry, digest)


def test_a_registry_that_keeps_failing_uploads_is_given_up_on(
    store: Store, registry: Registry, proxy
) -> None:
    def always(ex: Exchange) -> Action | None:
        if ex.method == "PUT" and "digest=" in ex.path:  # the whole body is read, then refused
            return Action(respond=(503, {}, b'{"errors":[{"code":"UNAVAILABLE","message":"disk full"}]}'))
        return None

    failing = proxy(registry.port, always)
    name, _ = synthetic_model(store, f"{failing.host}/team/model:1", 200_000)
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            drain(push(store, name, insecure=True, policy=Policy(backoff=0.05, transfer_attempts=3)))
            outcome.append(None)
        except BaseException as e:
            outcome.append(e)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(120)  # three attempts take well under a second; the bound only catches an endless loop
    assert not worker.is_alive(), f"still retrying after {len(failing.exchanges)} requests"
    assert outcome and isinstance(outcome[0], RegistryUnavailable)
    assert str(outcome[0]).startswith("uploading ")
