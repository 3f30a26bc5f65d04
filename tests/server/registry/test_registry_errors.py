"""What users see when a pull or push cannot work: Ollama's messages and status codes."""

from __future__ import annotations

import json

import httpx
import pytest

from llamita.server.registry.client import Policy
from llamita.server.registry.errors import NotEnoughSpace, NotFound, RegistryUnavailable
from llamita.server.registry.pull import pull
from llamita.server.registry.push import push
from llamita.server.store.blobs import Store
from llamita.server.store.names import parse_name

from .regkit import Action, Registry, drain, free_port, store_files, synthetic_model

FAST = Policy(backoff=0.01)


def post(server, path: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=30)


def test_missing_model_is_ollamas_file_does_not_exist(empty_server, registry: Registry) -> None:
    name = f"{registry.host}/team/absent:1"
    reply = post(empty_server, "/api/pull", {"model": name, "insecure": True, "stream": False})
    assert reply.status_code == 500
    assert reply.json() == {"error": "pull model manifest: file does not exist"}

    with httpx.stream("POST", empty_server.url + "/api/pull", json={"name": name, "insecure": True}) as r:
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert r.status_code == 200
    assert lines == [{"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}]


def test_registry_down_says_so(store: Store) -> None:
    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(RegistryUnavailable) as e:
        drain(pull(store, parse_name(f"{host}/team/model:1"), insecure=True, policy=FAST))
    assert str(e.value) == f"pull model manifest: could not connect to registry {host}: connection refused"
    assert store_files(store) == set()


def test_http_name_needs_insecure(empty_server) -> None:
    reply = post(empty_server, "/api/pull", {"model": "http://127.0.0.1:9/team/model:1"})
    assert (reply.status_code, reply.json()) == (500, {"error": "insecure protocol http"})


def test_request_validation(empty_server) -> None:
    assert post(empty_server, "/api/pull", {}).json() == {"error": "model is required"}
    bad = post(empty_server, "/api/pull", {"model": "a//b"})
    assert (bad.status_code, bad.json()) == (400, {"error": "invalid model name"})
    missing = post(
        empty_server, "/api/push", {"model": "127.0.0.1:9/team/nothing:1", "insecure": True, "stream": False}
    )
    assert missing.status_code == 500
    assert missing.json() == {"error": "model '127.0.0.1:9/team/nothing:1' not found"}


def test_transient_5xx_is_retried(store: Store, registry: Registry, proxy, tmp_path) -> None:
    source = Store(tmp_path / "source")
    name, digest = synthetic_model(source, f"{registry.host}/team/model:1", 100_000)
    drain(push(source, name, insecure=True))
    failures: list[str] = []

    def flaky(ex) -> Action | None:
        if "/manifests/" in ex.path and len(failures) < 2:
            failures.append(ex.path)
            return Action(respond=(503, {}, b'{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}'))
        return None

    front = proxy(registry.port, flaky)
    events = drain(pull(store, parse_name(f"{front.host}/team/model:1"), insecure=True, policy=FAST))
    assert events[-1] == {"status": "success"} and len(failures) == 2
    store.verify_blob(digest)

    failures.clear()
    always = proxy(registry.port, lambda ex: Action(respond=(503, {}, b"down for maintenance")))
    with pytest.raises(RegistryUnavailable) as e:
        drain(pull(store, parse_name(f"{always.host}/team/model:1"), insecure=True, policy=FAST))
    assert str(e.value) == (
        f"pull model manifest: registry {always.host} is unavailable: 503: down for maintenance"
    )
    assert len(always.exchanges) == FAST.request_attempts


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


def test_not_found_blob_on_push_source(store: Store, registry: Registry) -> None:
    """Pushing a model whose manifest names a blob that is gone fails before any upload."""
    name, digest = synthetic_model(store, f"{registry.host}/team/model:1", 10_000)
    store.blob_path(digest).unlink()
    with pytest.raises(Exception, match="missing from the store"):
        drain(push(store, name, insecure=True))
    with pytest.raises(NotFound):
        drain(pull(Store(store.root.parent / "other"), name, insecure=True))
