"""errors.py: what users read when a pull or push cannot work (Ollama's messages, statuses).

The HTTP status is api/errors.py's decision; these tests pin the words and codes a client
of /api/pull and /api/push sees.
"""

from __future__ import annotations

import json

import httpx

from .regkit import Registry


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
