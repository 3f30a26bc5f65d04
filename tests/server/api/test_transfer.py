"""``POST /api/pull`` and ``/api/push`` request checks (server/api/transfer.py), before any registry."""

from __future__ import annotations

import httpx


def post(server, path: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=30)


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
