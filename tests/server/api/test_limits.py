"""Request limits on a real server: body size, slow bodies, concurrent requests per key."""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from urllib.parse import urlsplit

import httpx
import pytest
from serving import serve_app

from llamita.server.api import build_app
from llamita.server.config import parse_size
from llamita.server.store.blobs import Store


def start(store: Store, monkeypatch: pytest.MonkeyPatch, **env: str) -> AbstractContextManager[str]:
    """A server built after ``env`` is set (build_app reads the limits once)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return serve_app(build_app(store, listen_host="127.0.0.1"))


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    return sock


def send_head(sock: socket.socket, method: str, path: str, length: int, headers: str = "") -> None:
    sock.sendall(
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n{headers}\r\n".encode()
    )


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    headers = {k.lower(): v for k, v in headers.items()}
    while len(body) < int(headers.get("content-length", 0)):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), headers, body


def is_closed(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("text", "size"),
    [("4096", 4096), ("32MiB", 32 << 20), ("1.5 GB", 1_500_000_000), ("2kib", 2048), ("1TiB", 1 << 40)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MiB", "-1", "12 parsecs", "1e9"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


# ---- body size -------------------------------------------------------------------------------
def test_declared_oversized_body_is_refused_before_it_is_sent(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    with start(store, monkeypatch) as url, connect(url) as sock:  # the defaults: 32 MiB for JSON
        send_head(sock, "POST", "/api/generate", (32 << 20) + 1)  # and not one byte of body
        status, headers, body = read_response(sock)
        assert status == 413
        assert json.loads(body) == {"error": f"request body too large (limit {32 << 20} bytes)"}
        assert headers["connection"] == "close" and is_closed(sock)


def test_blob_uploads_get_the_generous_limit(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"\0" * ((32 << 20) + 1)
    with start(store, monkeypatch) as url:
        assert httpx.post(url + "/api/chat", content=data, timeout=30).status_code == 413
        r = httpx.post(url + f"/api/blobs/{digest(data)}", content=data, timeout=30)
        assert r.status_code == 201 and store.has_blob(digest(data))


def test_streamed_body_is_cut_at_the_limit(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[int] = []

    def chunks(n: int) -> Iterator[bytes]:
        for _ in range(n):
            sent.append(512)
            yield b" " * 512

    with start(store, monkeypatch, LLAMITA_MAX_BODY="1KiB", LLAMITA_MAX_BLOB_BODY="4KiB") as url:
        r = httpx.post(url + "/api/generate", content=chunks(4))  # chunked: no Content-Length
        assert r.status_code == 413 and r.json()["error"] == "request body too large (limit 1024 bytes)"
        data = b"x" * 5000
        r = httpx.post(url + f"/api/blobs/{digest(data)}", content=iter([data[:2500], data[2500:]]))
        assert r.status_code == 413 and "4096" in r.json()["error"]
        assert not store.has_blob(digest(data)) and not list(store.blobs.glob("*partial*"))
        ok = httpx.post(url + "/api/show", content=iter([b'{"model":', b' "nope"}']))
        assert ok.status_code == 404  # under the limit, chunked bodies are read as usual


# ---- slow bodies -----------------------------------------------------------------------------
def test_trickled_body_is_cut_off(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    with start(store, monkeypatch, LLAMITA_BODY_TIMEOUT="400ms") as url, connect(url) as sock:
        send_head(sock, "POST", "/api/generate", 100)
        started = time.monotonic()
        sock.sendall(b'{"model": ')
        time.sleep(0.2)
        sock.sendall(b'"x", ')  # still trickling: the deadline covers the whole body
        status, headers, body = read_response(sock)
        assert status == 408 and json.loads(body) == {"error": "request body not received within 0.4s"}
        assert 0.35 < time.monotonic() - started < 3
        assert headers["connection"] == "close" and is_closed(sock)
        assert httpx.get(url + "/api/tags").status_code == 200  # the server is fine


def test_blob_upload_may_be_slow_but_not_stalled(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"y" * 4000
    with start(store, monkeypatch, LLAMITA_BODY_TIMEOUT="300ms") as url:

        def steady() -> Iterator[bytes]:
            for i in range(4):  # 0.6 s in all, every gap below the timeout
                time.sleep(0.15)
                yield data[i * 1000 : (i + 1) * 1000]

        assert httpx.post(url + f"/api/blobs/{digest(data)}", content=steady()).status_code == 201
        other = b"z" * 10
        with connect(url) as sock:
            send_head(sock, "POST", f"/api/blobs/{digest(other)}", len(other))
            sock.sendall(other[:5])  # then nothing
            status, _, _ = read_response(sock)
            assert status == 408 and not store.has_blob(digest(other))


# ---- concurrency per key ---------------------------------------------------------------------
def test_concurrent_requests_per_key_are_capped(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"held open"
    env = {"LLAMITA_API_KEYS": "alice,bob", "LLAMITA_MAX_CONCURRENT_PER_KEY": "1"}
    with start(store, monkeypatch, **env) as url, connect(url) as held:
        # Alice's upload is in flight (headers and half the body sent) ...
        send_head(held, "POST", f"/api/blobs/{digest(data)}", len(data), "Authorization: Bearer alice\r\n")
        held.sendall(data[:4])
        time.sleep(0.2)
        # ... so her next request is refused, while Bob and the health check are not affected.
        r = httpx.get(url + "/api/tags", headers={"Authorization": "Bearer alice"})
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert r.json() == {"error": "too many concurrent requests for this API key (limit 1)"}
        assert httpx.get(url + "/api/tags", headers={"Authorization": "Bearer bob"}).status_code == 200
        assert httpx.get(url + "/").status_code == 200
        held.sendall(data[4:])
        assert read_response(held)[0] == 201
        assert httpx.get(url + "/api/tags", headers={"Authorization": "Bearer alice"}).status_code == 200


def test_without_keys_the_cap_is_per_client_address(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLAMITA_API_KEYS", raising=False)
    with start(store, monkeypatch, LLAMITA_MAX_CONCURRENT_PER_KEY="1") as url, connect(url) as held:
        send_head(held, "POST", "/api/show", 20)
        time.sleep(0.2)
        assert httpx.get(url + "/api/tags").status_code == 429
        held.sendall(b'{"model": "nope"}   ')
        assert read_response(held)[0] == 404
        assert httpx.get(url + "/api/tags").status_code == 200


def test_behind_a_loopback_balancer_the_cap_follows_x_forwarded_for(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn trusts X-Forwarded-For from 127.0.0.1 (FORWARDED_ALLOW_IPS), as nginx sends it."""
    monkeypatch.delenv("LLAMITA_API_KEYS", raising=False)
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    with start(store, monkeypatch, LLAMITA_MAX_CONCURRENT_PER_KEY="1") as url, connect(url) as held:
        send_head(held, "POST", "/api/show", 20, "X-Forwarded-For: 10.0.0.7\r\n")
        time.sleep(0.2)
        assert httpx.get(url + "/api/tags", headers={"X-Forwarded-For": "10.0.0.7"}).status_code == 429
        assert httpx.get(url + "/api/tags", headers={"X-Forwarded-For": "10.0.0.8"}).status_code == 200
        held.sendall(b'{"model": "nope"}   ')
        assert read_response(held)[0] == 404
