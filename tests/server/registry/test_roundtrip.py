"""End to end: push → rm → pull through a real docker-registry, from the CLI and the official client.

These cross every registry module (and the API and CLI in front of them), so they live
here rather than with one module.
"""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import ollama
import pytest

from llamita.server.store.blobs import Store
from llamita.server.store.names import parse_name

from .regkit import Registry, store_files, synthetic_model


def llamita(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OLLAMA_HOST": url}
    return subprocess.run(
        [sys.executable, "-m", "llamita.server.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.model
def test_cli_push_rm_pull_round_trip_then_generate(server, registry: Registry) -> None:
    name = f"{registry.host}/team/model:tag"
    created = httpx.post(
        server.url + "/api/create",
        json={"model": name, "from": "smollm2:135m", "system": "Answer in one word.", "stream": False},
        timeout=60,
    )
    assert created.status_code == 200, created.text
    local = server.store.get(parse_name(name))
    assert local is not None
    digests = [layer.digest for layer in [local.config, *local.layers]]

    pushed = llamita(server.url, "push", name, "--insecure")
    assert pushed.returncode == 0, pushed.stderr
    lines = pushed.stderr.splitlines()
    assert lines[0] == "retrieving manifest" and lines[-2:] == ["pushing manifest", "success"]
    for digest in digests:
        assert f"pushing {digest[7:19]}: 100%" in pushed.stderr

    # Remove the model and the one it was made from, so every blob has to come back over the wire.
    assert llamita(server.url, "rm", name, "smollm2:135m").returncode == 0
    assert not any(server.store.has_blob(d) for d in digests)

    pulled = llamita(server.url, "pull", name, "--insecure")
    assert pulled.returncode == 0, pulled.stderr
    lines = pulled.stderr.splitlines()
    assert lines[0] == "pulling manifest"
    assert lines[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    for digest in digests:
        assert f"pulling {digest[7:19]}: 100%" in pulled.stderr

    back = server.store.get(parse_name(name))
    assert back is not None and back.raw == local.raw and back.digest == local.digest
    for digest in digests:
        server.store.verify_blob(digest)
    assert not [f for f in store_files(server.store) if "partial" in f]

    listed = llamita(server.url, "list").stdout
    assert f"{registry.host}/team/model:tag" in listed and local.digest[:12] in listed

    reply = httpx.post(
        server.url + "/api/generate",
        json={"model": name, "prompt": "Say hi", "stream": False, "options": {"num_predict": 4, "seed": 1}},
        timeout=120,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["done"] is True and reply.json()["eval_count"] >= 1


def test_official_client_progress_sequence(empty_server, registry: Registry, tmp_path) -> None:
    """The `ollama` Python client reads our stream; statuses are Ollama's, in Ollama's order."""
    name, model_digest = synthetic_model(empty_server.store, f"{registry.host}/ns/synthetic:1", 3_000_000)
    client = ollama.Client(host=empty_server.url)
    try:
        pushed = list(client.push(str(name), insecure=True, stream=True))
        statuses = [p.status for p in pushed]
        assert statuses[0] == "retrieving manifest" and statuses[-2:] == ["pushing manifest", "success"]
        model_events = [p for p in pushed if p.digest == model_digest]
        assert model_events and model_events[-1].completed == model_events[-1].total == 3_000_000
        assert all(p.status == f"pushing {p.digest[7:19]}" for p in pushed[1:-2])

        # Pushing again: the registry has every blob (HEAD), so each is reported complete at once.
        again = list(client.push(str(name), insecure=True, stream=True))
        blob_events = [p for p in again if p.digest]
        assert len(blob_events) == 2 and all(p.completed == p.total for p in blob_events)

        client.delete(str(name))
        assert store_files(empty_server.store) == set()
        pulled = list(client.pull(str(name), insecure=True, stream=True))
        statuses = [p.status for p in pulled]
        assert statuses[0] == "pulling manifest"
        assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
        assert {p.status for p in pulled if p.digest == model_digest} == {f"pulling {model_digest[7:19]}"}
        assert [p.completed for p in pulled if p.digest == model_digest][-1] == 3_000_000

        # A second pull finds everything present: every layer is reported complete once.
        pulled = list(client.pull(str(name), insecure=True, stream=True))
        assert [p.completed == p.total for p in pulled if p.digest] == [True, True]
        final = client.pull(str(name), insecure=True, stream=False)
        assert final.status == "success"
    finally:
        client.close()
    assert Store(empty_server.store.root).get(name) is not None
