"""Named keys with roles: the keys file grammar, the route -> role table, 401 vs 403 on every
route of a real server, reloads that keep the old keys, and names (never keys) in the logs."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fakeengine import FakeEngines
from serving import serve_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ggufgen import write_tiny_gguf
from llamita.server.api import build_app
from llamita.server.api.auth import OWNER, ROLE, AuthGuard, KeyRing, KeysFileError, key_id, parse_key_lines
from llamita.server.api.roles import ADMIN, ROUTE_ROLES, USER, allows, required_role
from llamita.server.cli import serve as serve_module
from llamita.server.model.create import import_gguf
from llamita.server.runtime.runners import Runners
from llamita.server.store.blobs import Store

ALICE = "alice-secret-0123456789"  # user, in clear
CAROL = "carol-secret-0123456789"  # user, as sha256:
BOB = "bob-secret-0123456789"  # admin, as sha256:
OLD = "an-old-bare-key-0123456789"  # a bare line: admin, named key-<8 hex>
SECRETS = (ALICE, CAROL, BOB, OLD)


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


OLD_NAME = f"key-{sha(OLD)[:8]}"
KEYS_FILE = f"""# the team
alice   {ALICE}   user     # laptop
carol\tsha256:{sha(CAROL)}\tuser

bob     sha256:{sha(BOB).upper()}  admin
{OLD}
"""


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# ---- the grammar -----------------------------------------------------------------------------
def test_keys_file_lines() -> None:
    keys = parse_key_lines(KEYS_FILE)
    assert [(k.name, k.role) for k in keys] == [
        ("alice", USER),
        ("carol", USER),
        ("bob", ADMIN),
        (OLD_NAME, ADMIN),
    ]
    assert [k.id for k in keys] == [key_id(s) for s in (ALICE, CAROL, BOB, OLD)]


def test_key_ring_knows_names_and_roles(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(KEYS_FILE)
    ring = KeyRing(["static-key"], path)
    assert ring.count == 5
    for secret, name, role in [
        (ALICE, "alice", USER),
        (CAROL, "carol", USER),
        (BOB, "bob", ADMIN),
        (OLD, OLD_NAME, ADMIN),
        ("static-key", f"key-{sha('static-key')[:8]}", ADMIN),  # LLAMITA_API_KEYS: full rights
    ]:
        key = ring.identify(f"Bearer {secret}")
        assert key is not None and (key.name, key.role) == (name, role)
        assert ring.identify("", secret) == key and ring.check(f"Bearer {secret}") == key_id(secret)
    for wrong in (f"sha256:{sha(CAROL)}", sha(BOB), "alice", "user", ALICE + "x"):
        assert ring.identify(f"Bearer {wrong}") is None, wrong  # the hash is not the key


BAD_LINES = [
    (f"alice {ALICE} root", "unknown role"),
    (f"alice {ALICE}", "2 fields"),
    (f"alice {ALICE} user extra", "4 fields"),
    (f"alice sha256:{sha(ALICE)[:63]} user", "bad sha256"),
    (f"alice sha256:{sha(ALICE)[:63]}g user", "bad sha256"),
    (f"dave sha256:{sha(OLD)} user", "duplicate key (also on line 1)"),
    (f"bob {ALICE}2 admin\nbob {BOB} user", "duplicate name (also on line 4)"),
    (f"{OLD_NAME} {ALICE} user", "duplicate name (also on line 1)"),
    (f"al/ice {ALICE}2 user", "bad name"),
]


@pytest.mark.parametrize(("line", "message"), BAD_LINES, ids=[m for _, m in BAD_LINES])
def test_a_bad_line_stops_the_start_naming_its_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "keys"
    path.write_text(f"{OLD}\n# comment\n\n{line}\n")
    with pytest.raises(KeysFileError) as info:
        KeyRing(path=path)
    text = str(info.value)
    assert "LLAMITA_API_KEYS_FILE" in text and message in text
    assert re.search(r"line [45]:", text), text
    assert not any(secret in text for secret in SECRETS) and sha(ALICE)[:40] not in text


def test_build_app_refuses_a_bad_keys_file(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys"
    path.write_text(f"alice {ALICE} superuser\n")
    monkeypatch.setenv("LLAMITA_API_KEYS_FILE", str(path))
    with pytest.raises(KeysFileError, match="line 1: unknown role") as info:
        build_app(store, listen_host="127.0.0.1")
    assert ALICE not in str(info.value)


def test_reload_keeps_the_old_keys_on_a_bad_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "keys"
    path.write_text(KEYS_FILE)
    ring = KeyRing(path=path)
    path.write_text(f"alice {ALICE} user\ncarol {CAROL}\n")  # line 2: two fields
    with caplog.at_level(logging.INFO, logger="llamita.auth"):
        assert not ring.reload()
    assert "keeping the previous API keys" in caplog.text and "line 2: 2 fields" in caplog.text
    assert ring.identify(bearer(BOB)["Authorization"]).name == "bob"  # type: ignore[union-attr]
    assert ring.count == 4
    path.write_text(f"alice {ALICE} admin\n")
    with caplog.at_level(logging.INFO, logger="llamita.auth"):
        assert ring.reload()
    assert ring.identify(f"Bearer {ALICE}").role == ADMIN  # type: ignore[union-attr]
    assert ring.identify(f"Bearer {BOB}") is None
    assert "re-read" in caplog.text and "alice" in caplog.text
    assert not any(secret in caplog.text for secret in SECRETS)


def test_a_bad_file_is_reported_once_not_on_every_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(KeyRing, "RECHECK_SECONDS", 0.0)
    path = tmp_path / "keys"
    path.write_text(KEYS_FILE)
    ring = KeyRing(path=path)
    stat = path.stat()
    path.write_text("alice only-two\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with caplog.at_level(logging.ERROR, logger="llamita.auth"):
        for _ in range(3):
            assert ring.check(f"Bearer {ALICE}") == key_id(ALICE)
    assert caplog.text.count("keeping the previous API keys") == 1


# ---- the table -------------------------------------------------------------------------------
def test_every_route_of_the_app_is_classified(store: Store) -> None:
    app = build_app(store, listen_host="127.0.0.1")
    paths = [route.path for route in app.routes if isinstance(route, Route)]
    assert len(paths) == len(app.routes) and paths
    unclassified = [path for path in paths if path not in ROUTE_ROLES]
    assert not unclassified, f"add these routes to server/api/roles.py ROUTE_ROLES: {unclassified}"
    for path in paths:
        assert required_role(path) == ROUTE_ROLES[path]


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("/api/blobs/sha256:" + "0" * 64, ADMIN),
        ("/v1/models/library/smollm2:135m", USER),
        ("/v1/responses/resp_123", USER),
        ("/v1/messages/count_tokens", USER),
        ("/v1/files", ADMIN),  # unknown: admin
        ("/api/anything", ADMIN),
        ("/api/tags/extra", ADMIN),
    ],
)
def test_required_role(path: str, role: str) -> None:
    assert required_role(path) == role
    assert allows(ADMIN, path) and allows(USER, path) == (role == USER)


# ---- every route on a real server ------------------------------------------------------------
@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Starlette]]:
    """A server with the team keys file (alice and carol users, bob and the bare key admins)."""
    root = tmp_path_factory.mktemp("roles")
    store = Store(root / "models")
    store.ensure()
    keys = root / "keys"
    keys.write_text(KEYS_FILE)
    with pytest.MonkeyPatch.context() as mp:
        for name in ("LLAMITA_API_KEYS", "LLAMITA_METRICS_PUBLIC", "LLAMITA_MAX_CONCURRENT_PER_KEY"):
            mp.delenv(name, raising=False)
        mp.setenv("LLAMITA_API_KEYS_FILE", str(keys))
        app = build_app(store, listen_host="127.0.0.1")
    with serve_app(app) as url:
        yield url, app


def _calls() -> list[tuple[str, str]]:
    """(method, concrete path) for every method of every route of the app."""
    app = build_app(Store(Path("/nonexistent-llamita-models")), listen_host="127.0.0.1")
    calls = []
    for route in app.routes:
        assert isinstance(route, Route) and route.methods
        path = re.sub(r"\{[^}]+\}", "nope", route.path)
        calls += [(method, path) for method in sorted(route.methods)]
    return calls


CALLS = _calls()
REACHED = (200, 400, 404)  # the handler answered (the body is empty, the names do not exist)
PUBLIC_CALLS = {("GET", "/"), ("HEAD", "/"), ("GET", "/api/version"), ("HEAD", "/api/version")}


def _send(url: str, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    # An empty object: every handler that is reached refuses it (400/404) without side effects.
    content = b"{}" if method in ("POST", "DELETE") else None
    return httpx.request(method, url + path, headers=headers, content=content, timeout=30)


@pytest.mark.parametrize(("method", "path"), CALLS, ids=[f"{m} {p}" for m, p in CALLS])
def test_roles_on_every_route(team: tuple[str, Starlette], method: str, path: str) -> None:
    url, _ = team
    admin_only = required_role(path) == ADMIN
    public = (method, path) in PUBLIC_CALLS
    for headers in ({}, bearer("wrong"), bearer(sha(ALICE))):
        assert _send(url, method, path, headers).status_code == (200 if public else 401)
    for user in (bearer(ALICE), {"x-api-key": CAROL}):
        r = _send(url, method, path, user)
        if admin_only:
            assert r.status_code == 403, r.text
            if method != "HEAD":
                assert "admin only" in r.text and ("alice" in r.text or "carol" in r.text)
        else:
            assert r.status_code in REACHED, r.text
    for admin in (bearer(BOB), bearer(OLD)):
        assert _send(url, method, path, admin).status_code in REACHED


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/pull", {"error": 'key "alice" (role user) may not use POST /api/pull: admin only'}),
        ("GET", "/metrics", {"error": 'key "alice" (role user) may not use GET /metrics: admin only'}),
        (
            "POST",
            "/v1/files",
            {
                "error": {
                    "message": 'key "alice" (role user) may not use POST /v1/files: admin only',
                    "type": "permission_error",
                    "param": None,
                    "code": None,
                }
            },
        ),
        (
            "POST",
            "/v1/messages/batches",
            {
                "type": "error",
                "error": {
                    "type": "permission_error",
                    "message": 'key "alice" (role user) may not use POST /v1/messages/batches: admin only',
                },
            },
        ),
    ],
)
def test_403_has_the_routes_error_shape(
    team: tuple[str, Starlette], method: str, path: str, body: object
) -> None:
    r = _send(team[0], method, path, bearer(ALICE))
    assert r.status_code == 403 and r.json() == body


def test_401_then_403_then_through(team: tuple[str, Starlette]) -> None:
    url, _ = team
    pull = {"model": "nope"}
    assert httpx.post(url + "/api/create", json=pull).status_code == 401
    assert httpx.post(url + "/api/create", json=pull, headers=bearer("nope")).status_code == 401
    assert httpx.post(url + "/api/create", json=pull, headers=bearer(ALICE)).status_code == 403
    assert httpx.post(url + "/api/create", json=pull, headers=bearer(BOB)).status_code == 400
    assert httpx.post(url + "/v1/files", headers=bearer(BOB)).text == "404 page not found"
    assert httpx.get(url + "/api/tags", headers=bearer(ALICE)).json() == {"models": []}


def test_names_in_the_logs_keys_never(team: tuple[str, Starlette], caplog: pytest.LogCaptureFixture) -> None:
    url, _ = team
    with caplog.at_level(logging.DEBUG, logger="llamita.auth"):
        httpx.post(url + "/api/pull", json={"model": "x"}, headers=bearer(ALICE))
        httpx.delete(url + "/api/delete", headers={"x-api-key": CAROL})
        httpx.get(url + "/api/tags", headers=bearer(BOB))
        httpx.get(url + "/api/ps", headers=bearer(OLD))
        httpx.get(url + "/api/tags", headers=bearer("not-a-key-0123456789"))
    text = caplog.text
    assert 'key "alice" (role user) may not use POST /api/pull: admin only' in text
    assert 'key "carol" (role user) may not use DELETE /api/delete' in text
    assert 'key "bob" (role admin): GET /api/tags' in text
    assert f'key "{OLD_NAME}" (role admin): GET /api/ps' in text
    assert "401 GET /api/tags from 127.0.0.1" in text
    for secret in (*SECRETS, "not-a-key-0123456789"):
        assert secret not in text


# ---- the owner contract ----------------------------------------------------------------------
async def _whoami(request: Request) -> JSONResponse:
    return JSONResponse({"owner": request.scope.get(OWNER), "role": request.scope.get(ROLE)})


def test_owner_and_role_are_in_the_scope(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(KEYS_FILE)
    app = Starlette(routes=[Route("/api/tags", _whoami), Route("/", _whoami)])
    guarded = AuthGuard(app, KeyRing(path=path))
    with serve_app(guarded) as url:  # type: ignore[arg-type]
        for key, owner, role in [(ALICE, "alice", USER), (CAROL, "carol", USER), (OLD, OLD_NAME, ADMIN)]:
            assert httpx.get(url + "/api/tags", headers=bearer(key)).json() == {"owner": owner, "role": role}
        # A public route stays open and still names a caller who sends a key.
        assert httpx.get(url + "/").json() == {"owner": None, "role": None}
        assert httpx.get(url + "/", headers=bearer(BOB)).json() == {"owner": "bob", "role": ADMIN}
    with serve_app(AuthGuard(app, KeyRing())) as url:  # type: ignore[arg-type]
        assert httpx.get(url + "/api/tags", headers=bearer(ALICE)).json() == {"owner": None, "role": None}


def test_sdks_with_a_user_key(team: tuple[str, Starlette]) -> None:
    openai = pytest.importorskip("openai")
    url, _ = team
    assert (
        openai.OpenAI(base_url=url + "/v1", api_key=ALICE).models.list().data is None
    )  # Ollama: null when empty
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=url + "/v1", api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.PermissionDeniedError, match="admin only"):
        openai.OpenAI(base_url=url + "/v1", api_key=CAROL, max_retries=0).files.list()


def test_the_documented_keys_file_parses() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "remote.md").read_text()
    example = doc.split("Keys file format:", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    keys = parse_key_lines(example)
    assert [(k.name, k.role) for k in keys] == [
        ("alice", USER),
        ("ci", ADMIN),
        (f"key-{sha('an-old-key-from-before-roles')[:8]}", ADMIN),
    ]


def test_serve_stops_at_start_on_a_bad_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``llamita serve`` itself (uvicorn.run replaced: nothing is bound): exit 1, the line named."""
    path = tmp_path / "keys"
    path.write_text(f"alice {ALICE} user\nbob {BOB}\n")
    monkeypatch.setattr(serve_module.uvicorn, "run", lambda app, **kwargs: pytest.fail("served"))
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("LLAMITA_NO_DEFAULT_MODEL", "1")
    monkeypatch.setenv("LLAMITA_API_KEYS_FILE", str(path))
    for name in ("LLAMITA_TLS_CERT", "LLAMITA_TLS_KEY", "LLAMITA_API_KEYS"):
        monkeypatch.delenv(name, raising=False)
    assert serve_module.serve() == 1
    err = capsys.readouterr().err
    assert f"Error: LLAMITA_API_KEYS_FILE {path} line 2: 2 fields" in err
    assert ALICE not in err and BOB not in err


def test_the_key_name_reaches_the_engine_as_owner(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Route -> runtime -> engine: every family's request carries its key's name (the owner)."""
    import_gguf(store, "tiny", write_tiny_gguf(tmp_path / "tiny.gguf"))
    path = tmp_path / "keys"
    path.write_text(KEYS_FILE)
    monkeypatch.setenv("LLAMITA_API_KEYS_FILE", str(path))
    monkeypatch.delenv("LLAMITA_API_KEYS", raising=False)
    engines = FakeEngines()
    app = build_app(store, listen_host="127.0.0.1", runners=Runners(engines))
    hi = [{"role": "user", "content": "hi"}]
    calls = [
        ("/api/generate", {"model": "tiny", "prompt": "x", "stream": False}, bearer(ALICE)),
        ("/api/chat", {"model": "tiny", "messages": hi, "stream": False}, {"x-api-key": CAROL}),
        ("/v1/chat/completions", {"model": "tiny", "messages": hi}, bearer(BOB)),
        ("/v1/messages", {"model": "tiny", "max_tokens": 8, "messages": hi}, {"x-api-key": OLD}),
    ]
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for route, body, headers in calls:
            assert client.post(route, json=body, headers=headers).status_code == 200, route
    assert [r.owner for r in engines.requests] == ["alice", "carol", "bob", OLD_NAME]
