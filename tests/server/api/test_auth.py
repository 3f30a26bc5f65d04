"""API keys: the keys file, the bearer check on every route family, and the CLI client's key."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serving import serve_app

from llamita.server.api import build_app
from llamita.server.api.auth import KeyRing, KeysFileError, exposure_warning, key_id, parse_keys
from llamita.server.client import Client, ResponseError
from llamita.server.store.blobs import Store

KEY = "k-team-0123456789"
DATA = b"blob bytes"
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()
MISSING = "sha256:" + "0" * 64

# (family, method, path, JSON body or raw bytes, status once past the gate): every family
# answers something other than 401 when the key is right (404 = reached the handler).
ROUTES = [
    ("native", "GET", "/api/tags", None, 200),
    ("native", "GET", "/api/ps", None, 200),
    ("native", "POST", "/api/show", {"model": "nope"}, 404),
    ("native", "POST", "/api/generate", {"model": "nope", "prompt": "hi"}, 404),
    ("native", "POST", "/api/chat", {"model": "nope", "messages": []}, 404),
    ("native", "POST", "/api/embed", {"model": "nope", "input": "x"}, 404),
    ("native", "DELETE", "/api/delete", {"model": "nope"}, 404),
    ("native", "POST", "/api/create", {"model": "x", "from": "nope"}, 404),
    ("v1", "GET", "/v1/models", None, 200),
    (
        "v1",
        "POST",
        "/v1/chat/completions",
        {"model": "nope", "messages": [{"role": "user", "content": "x"}]},
        404,
    ),
    ("v1", "POST", "/v1/embeddings", {"model": "nope", "input": "x"}, 404),
    (
        "anthropic",
        "POST",
        "/v1/messages",
        {"model": "nope", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]},
        404,
    ),
    ("blobs", "HEAD", f"/api/blobs/{MISSING}", None, 404),
    ("blobs", "POST", f"/api/blobs/{DIGEST}", DATA, 201),
    ("metrics", "GET", "/metrics", None, 200),
]
IDS = [f"{r[0]}:{r[1]} {r[2].split('/sha256')[0]}" for r in ROUTES]


def call(
    url: str, method: str, path: str, body: object, headers: dict[str, str] | None = None
) -> httpx.Response:
    kwargs: dict[str, object] = {"content": body} if isinstance(body, bytes) else {"json": body}
    if body is None:
        kwargs = {}
    return httpx.request(method, url + path, headers=headers or {}, timeout=30, **kwargs)  # type: ignore[arg-type]


def _module_server(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Iterator[str]:
    """One server per module and mode (cheap to share: these tests only read, and build_app
    reads the keys once, so the variables are set just while it is built)."""
    store = Store(tmp_path_factory.mktemp("auth") / "models")
    store.ensure()
    with pytest.MonkeyPatch.context() as mp:
        for name in ("LLAMITA_API_KEYS", "LLAMITA_API_KEYS_FILE", "LLAMITA_METRICS_PUBLIC"):
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        app = build_app(store, listen_host="127.0.0.1")
    with serve_app(app) as url:
        yield url


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server that requires ``KEY`` (one of two configured keys)."""
    yield from _module_server(tmp_path_factory, {"LLAMITA_API_KEYS": f"other-key, {KEY}"})


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _module_server(tmp_path_factory, {})


# ---- keys and the key ring -------------------------------------------------------------------
def test_parse_keys_skips_comments_and_blanks() -> None:
    text = "# team keys\n\nalice-key\n  bob-key   # laptop\n\t#indented comment\ncarol\t# tab comment\n"
    assert parse_keys(text) == ["alice-key", "bob-key", "carol"]


def test_key_ring_checks_bearer_only() -> None:
    ring = KeyRing(["a-key", "b-key"])
    assert ring.enabled and ring.count == 2
    assert ring.check("Bearer b-key") == key_id("b-key")
    assert ring.check("bearer   a-key ") == key_id("a-key")
    for header in ("", "Bearer", "Bearer ", "Bearer c-key", "Basic a-key", "a-key", "Bearer a-key2"):
        assert ring.check(header) is None, header
    assert key_id("a-key") != key_id("b-key") and "a-key" not in key_id("a-key")


def test_key_ring_takes_an_x_api_key_without_a_bearer_token() -> None:
    ring = KeyRing(["a-key"])
    assert ring.check("", "a-key") == key_id("a-key")
    assert ring.check("Basic zzz", " a-key ") == key_id("a-key")
    assert ring.check("", "b-key") is None and ring.check("", "") is None
    assert ring.check("Bearer wrong", "a-key") is None  # a bearer token, when sent, is the key


def test_no_keys_means_open() -> None:
    assert not KeyRing().enabled and not KeyRing([""]).enabled


def test_keys_file_reload_keeps_old_keys_on_error(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("first\n")
    ring = KeyRing(path=path)
    assert ring.check("Bearer first")
    path.write_text("# rotated\nsecond\n")
    assert ring.reload()
    assert ring.check("Bearer second") and not ring.check("Bearer first")
    path.unlink()
    assert not ring.reload()
    assert ring.check("Bearer second")  # unreadable file: the previous keys stay


def test_keys_file_change_is_noticed_without_a_signal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(KeyRing, "RECHECK_SECONDS", 0.0)
    path = tmp_path / "keys"
    path.write_text("first\n")
    ring = KeyRing(path=path)
    stat = path.stat()
    path.write_text("second\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime: not re-read
    assert ring.check("Bearer first") and not ring.check("Bearer second")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert ring.check("Bearer second") and not ring.check("Bearer first")


def test_empty_keys_file_locks_everyone_out(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("# nobody yet\n")
    ring = KeyRing(path=path)
    assert ring.enabled and ring.count == 0 and ring.check("Bearer ") is None


def test_missing_keys_file_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(KeysFileError, match="LLAMITA_API_KEYS_FILE"):
        KeyRing(path=tmp_path / "absent")


@pytest.mark.parametrize(
    ("host", "keys", "warns"),
    [
        ("0.0.0.0", [], True),
        ("192.168.1.5", [], True),
        ("gpu-box.lan", [], True),
        ("::", [], True),
        ("0.0.0.0", ["k"], False),
        ("127.0.0.1", [], False),
        ("::1", [], False),
        ("localhost", [], False),
    ],
)
def test_exposure_warning(host: str, keys: list[str], warns: bool) -> None:
    message = exposure_warning(host, KeyRing(keys))
    assert (message is not None) == warns
    if message:
        assert "NO API KEY" in message and "LLAMITA_API_KEYS" in message


# ---- every route family on a real server -----------------------------------------------------
@pytest.mark.parametrize(("family", "method", "path", "body", "status"), ROUTES, ids=IDS)
def test_routes_need_the_key(
    keyed: str, family: str, method: str, path: str, body: object, status: int
) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}):
        r = call(keyed, method, path, body, headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer")
        if family == "anthropic":
            error = {"type": "authentication_error", "message": "unauthorized"}
            assert r.json() == {"type": "error", "error": error}
        elif method != "HEAD":
            assert r.json() == {"error": "unauthorized"}
            assert r.headers["content-type"] == "application/json; charset=utf-8"
    r = call(keyed, method, path, body, {"Authorization": f"Bearer {KEY}"})
    assert r.status_code == status, r.text
    r = call(keyed, method, path, body, {"x-api-key": KEY})  # Anthropic's header, on every route
    assert r.status_code == (200 if status == 201 else status), r.text  # a blob is there now


@pytest.mark.parametrize(("family", "method", "path", "body", "status"), ROUTES, ids=IDS)
def test_routes_are_open_without_keys(
    open_server: str, family: str, method: str, path: str, body: object, status: int
) -> None:
    assert call(open_server, method, path, body).status_code == status
    # Clients that always send a header (Continue CLI sends its empty key) are not refused.
    again = 200 if status == 201 else status  # the blob is there now
    assert call(open_server, method, path, body, {"Authorization": "Bearer any"}).status_code == again


def test_health_checks_stay_public(keyed: str) -> None:
    assert httpx.get(keyed + "/").text == "Ollama is running"
    assert httpx.head(keyed + "/").status_code == 200
    assert "version" in httpx.get(keyed + "/api/version").json()
    assert httpx.head(keyed + "/api/version").status_code == 200
    assert httpx.post(keyed + "/api/version").status_code == 401  # only GET/HEAD are public


def test_metrics_can_be_made_public(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMITA_API_KEYS", KEY)
    monkeypatch.setenv("LLAMITA_METRICS_PUBLIC", "1")
    with serve_app(build_app(store, listen_host="127.0.0.1")) as url:
        assert httpx.get(url + "/metrics").status_code == 200
        assert httpx.get(url + "/api/tags").status_code == 401


def test_cors_preflight_is_answered_before_auth(keyed: str) -> None:
    origin = "http://localhost:3000"
    r = httpx.options(
        keyed + "/api/chat",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert r.status_code == 204 and "Authorization" in r.headers["access-control-allow-headers"]
    r = httpx.get(keyed + "/api/tags", headers={"Origin": origin})
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == origin  # readable by the page
    r = httpx.get(keyed + "/api/tags", headers={"Origin": origin, "Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin
    assert httpx.get(keyed + "/api/tags", headers={"Origin": "http://evil.example"}).status_code == 403


def test_keys_file_reload_on_a_live_server(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys"
    path.write_text("old-key\n")
    monkeypatch.setenv("LLAMITA_API_KEYS_FILE", str(path))
    app = build_app(store, listen_host="127.0.0.1")
    with serve_app(app) as url:
        assert httpx.get(url + "/api/tags", headers={"Authorization": "Bearer old-key"}).status_code == 200
        stat = path.stat()
        path.write_text("new-key\n")
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        app.state.keys.request_reload()  # what SIGHUP does in `llamita serve`
        assert httpx.get(url + "/api/tags", headers={"Authorization": "Bearer old-key"}).status_code == 401
        assert httpx.get(url + "/api/tags", headers={"Authorization": "Bearer new-key"}).status_code == 200


def test_cli_client_sends_llamita_api_key(keyed: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLAMITA_API_KEY", raising=False)
    with Client(keyed) as client, pytest.raises(ResponseError) as info:
        client.list()
    assert info.value.status == 401 and "LLAMITA_API_KEY" in str(info.value)
    monkeypatch.setenv("LLAMITA_API_KEY", KEY)
    with Client(keyed) as client:
        assert client.list() == []
        assert client.has_blob(MISSING) is False
