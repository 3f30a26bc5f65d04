"""errors.py: what users read when a pull or push cannot work (Ollama's messages, statuses).

The kinds and their default words first, then which kind each real registry answer becomes,
then what a client of /api/pull and /api/push sees (the HTTP status is api/errors.py's
decision: 500 for every pull or push failure, as Ollama).
"""

from __future__ import annotations

import json

import httpx
import pytest

from llamita.server.registry.client import Policy, RegistryClient
from llamita.server.registry.errors import (
    Cancelled,
    CorruptDownload,
    InsecureProtocol,
    NotEnoughSpace,
    NotFound,
    RegistryError,
    RegistryUnavailable,
    Unauthorized,
)
from llamita.server.registry.pull import pull
from llamita.server.registry.push import push
from llamita.server.store.blobs import Store
from llamita.server.store.names import parse_name

from .regkit import Action, Registry, drain, synthetic_model

KINDS = [
    RegistryError,
    InsecureProtocol,
    NotFound,
    Unauthorized,
    RegistryUnavailable,
    CorruptDownload,
    NotEnoughSpace,
    Cancelled,
]


def test_default_messages_are_ollamas() -> None:
    assert str(NotFound()) == "file does not exist"  # Go's os.ErrNotExist, which clients match
    assert str(InsecureProtocol()) == "insecure protocol http"
    assert str(Cancelled()) == "download cancelled"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_with_context_keeps_the_kind(kind: type[RegistryError]) -> None:
    error = kind("file does not exist")
    with_context = error.with_context("pull model manifest")
    assert type(with_context) is kind and isinstance(with_context, RegistryError)
    assert str(with_context) == "pull model manifest: file does not exist"
    assert str(error) == "file does not exist"  # the original is left alone


# ---- which kind each registry answer becomes ---------------------------------------------
def test_real_registry_answers_become_their_kinds(registry: Registry, proxy, tmp_path) -> None:
    source = Store(tmp_path / "source")
    name, digest = synthetic_model(source, f"{registry.host}/team/model:1", 10_000)
    drain(push(source, name, insecure=True))
    fast = Policy(backoff=0.01)

    with RegistryClient(name, insecure=True, policy=fast) as client:
        assert client.has_blob(digest) is True
    with RegistryClient(parse_name(f"{registry.host}/team/absent:1"), insecure=True, policy=fast) as client:
        with pytest.raises(NotFound) as e:
            client.get_manifest()
        assert str(e.value) == "file does not exist"
        assert client.has_blob(digest) is False  # a 404 on HEAD is an answer, not an error

    def answers(status: int, body: bytes):
        return proxy(registry.port, lambda ex: Action(respond=(status, {}, body)))

    cases = [
        (403, b'{"errors":[{"code":"DENIED","message":"requested access is denied"}]}', Unauthorized),
        (400, b'{"errors":[{"code":"NAME_INVALID","message":"invalid repository name"}]}', RegistryError),
        (503, b"down", RegistryUnavailable),
    ]
    for status, body, kind in cases:
        front = answers(status, body)
        with pytest.raises(RegistryError) as e:
            drain(
                pull(
                    Store(tmp_path / f"target-{status}"),
                    parse_name(f"{front.host}/team/model:1"),
                    True,
                    policy=fast,
                )
            )
        assert type(e.value) is kind, (status, e.value)
        assert str(e.value).startswith("pull model manifest: ")
    assert str(e.value) == f"pull model manifest: registry {front.host} is unavailable: 503: down"


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


def test_unauthorized_over_http_is_500_with_the_hint(empty_server, auth_registry: Registry) -> None:
    name = f"{auth_registry.host}/team/private:1"
    synthetic_model(empty_server.store, name, 10_000)
    pulled = post(empty_server, "/api/pull", {"model": name, "insecure": True, "stream": False})
    pushed = post(empty_server, "/api/push", {"model": name, "insecure": True, "stream": False})
    for reply in (pulled, pushed):
        assert reply.status_code == 500
        assert "unauthorized: access denied;" in reply.json()["error"]
        assert "LLAMITA_REGISTRY_AUTH" in reply.json()["error"]
    assert pulled.json()["error"].startswith("pull model manifest: unauthorized")
