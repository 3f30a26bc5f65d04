"""Pure pieces of the registry client: URLs (hf.co included), challenges, credentials, part state."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import httpx
import pytest

from llamita.server.cli.transfer import ProgressView
from llamita.server.registry import auth, parts
from llamita.server.registry.client import (
    Policy,
    RegistryClient,
    base_url,
    blob_url,
    manifest_url,
    upload_url,
)
from llamita.server.registry.errors import InsecureProtocol, RegistryError, Unauthorized
from llamita.server.registry.pull import parse_manifest, progress
from llamita.server.store.blobs import Store
from llamita.server.store.names import parse_name


# ---- URLs -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("llama3", "https://registry.ollama.ai/v2/library/llama3/manifests/latest"),
        ("team/coder:1.0", "https://registry.ollama.ai/v2/team/coder/manifests/1.0"),
        ("localhost:5000/team/coder:1.0", "https://localhost:5000/v2/team/coder/manifests/1.0"),
        (
            "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
            "https://hf.co/v2/bartowski/Llama-3.2-1B-Instruct-GGUF/manifests/Q4_K_M",
        ),
        ("hf.co/unsloth/Qwen3-0.6B-GGUF", "https://hf.co/v2/unsloth/Qwen3-0.6B-GGUF/manifests/latest"),
        (
            "huggingface.co/Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF:q8_0",
            "https://huggingface.co/v2/Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF/manifests/q8_0",
        ),
        (
            "https://huggingface.co/TheBloke/CodeLlama-7B-GGUF:Q4_K_M",
            "https://huggingface.co/v2/TheBloke/CodeLlama-7B-GGUF/manifests/Q4_K_M",
        ),
    ],
)
def test_manifest_urls(name: str, url: str) -> None:
    parsed = parse_name(name)
    assert parsed.is_valid
    assert manifest_url(parsed) == url


def test_hf_names_are_stored_under_their_host() -> None:
    name = parse_name("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M")
    assert name.parts == ("hf.co", "bartowski", "Llama-3.2-1B-Instruct-GGUF", "Q4_K_M")
    assert name.shortest == "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"
    digest = "sha256:" + "a" * 64
    assert blob_url(name, digest) == f"https://hf.co/v2/bartowski/Llama-3.2-1B-Instruct-GGUF/blobs/{digest}"
    assert upload_url(name) == "https://hf.co/v2/bartowski/Llama-3.2-1B-Instruct-GGUF/blobs/uploads/"


def test_insecure_and_schemes() -> None:
    local = parse_name("127.0.0.1:5000/team/m:1")
    assert base_url(local, insecure=False) == "https://127.0.0.1:5000"
    assert base_url(local, insecure=True) == "http://127.0.0.1:5000"
    plain = parse_name("http://127.0.0.1:5000/team/m:1")
    with pytest.raises(InsecureProtocol, match=r"^insecure protocol http$"):
        base_url(plain, insecure=False)
    assert base_url(plain, insecure=True) == "http://127.0.0.1:5000"
    with pytest.raises(RegistryError, match="unsupported protocol"):
        base_url(parse_name("ftp://host/team/m:1"), insecure=False)


# ---- challenges and credentials -------------------------------------------------------------
def test_parse_bearer_challenge_with_comma_in_scope() -> None:
    header = 'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:team/coder:pull,push"'
    challenge = auth.parse_challenge(header)
    assert challenge == auth.Challenge(
        "bearer", "https://auth.example.com/token", "registry.example.com", "repository:team/coder:pull,push"
    )
    assert challenge.token_url() == (
        "https://auth.example.com/token?service=registry.example.com&scope=repository%3Ateam%2Fcoder%3Apull%2Cpush"
    )


def test_token_url_keeps_realm_query_and_splits_scopes() -> None:
    challenge = auth.Challenge(
        "bearer", "https://a.example/token?x=1", "svc", "repository:a:pull repository:b:pull"
    )
    assert challenge.token_url() == (
        "https://a.example/token?x=1&service=svc&scope=repository%3Aa%3Apull&scope=repository%3Ab%3Apull"
    )


def test_parse_other_challenges() -> None:
    assert auth.parse_challenge('Basic realm="Registry Realm"') == auth.Challenge("basic", "Registry Realm")
    assert auth.parse_challenge("") is None
    assert auth.parse_challenge('Negotiate realm="x"') is None


def test_token_replies() -> None:
    assert auth.token_from_response(b'{"token":"abc"}') == "abc"
    assert auth.token_from_response(b'{"access_token":"xyz","expires_in":300}') == "xyz"
    with pytest.raises(ValueError):
        auth.token_from_response(b'{"nope":1}')


def test_credentials_from_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setenv("LLAMITA_REGISTRY_AUTH", "reg.example.com=alice:pa:ss, localhost:5000=ci:tok")
    assert auth.credentials("reg.example.com") == ("alice", "pa:ss")
    assert auth.credentials("LOCALHOST:5000") == ("ci", "tok")
    assert auth.credentials("other.example.com") is None
    monkeypatch.setenv("LLAMITA_REGISTRY_AUTH", "'bob:secret'")
    assert auth.credentials("anything.example") == ("bob", "secret")
    monkeypatch.delenv("LLAMITA_REGISTRY_AUTH")
    assert auth.credentials("reg.example.com") is None


def test_credentials_from_docker_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LLAMITA_REGISTRY_AUTH", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    encoded = base64.b64encode(b"carol:pw").decode()
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "auths": {
                    "https://reg.example.com/v1/": {"auth": encoded},
                    "ghcr.io": {"username": "dave", "password": "tok"},
                    "broken.example": {"auth": "!!"},
                }
            }
        )
    )
    assert auth.credentials("reg.example.com") == ("carol", "pw")
    assert auth.credentials("ghcr.io") == ("dave", "tok")
    assert auth.credentials("broken.example") is None


# ---- the HTTP client against scripted transports ----------------------------------------------
def scripted(handler) -> RegistryClient:
    return RegistryClient(
        parse_name("reg.example.com/team/m:1"),
        policy=Policy(backoff=0),
        transport=httpx.MockTransport(handler),
        sleep=lambda s: None,
    )


def test_bearer_flow_fetches_a_token_once_and_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMITA_REGISTRY_AUTH", "reg.example.com=u:p")
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        if request.url.host == "auth.example.com":
            assert request.headers["authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
            return httpx.Response(200, json={"token": "TOKEN"})
        if request.headers.get("authorization") != "Bearer TOKEN":
            challenge = (
                'Bearer realm="https://auth.example.com/token",service="reg",scope="repository:team/m:pull"'
            )
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        return httpx.Response(200, content=b'{"layers":[]}')

    client = scripted(handler)
    assert client.get_manifest() == b'{"layers":[]}'
    assert client.get_manifest() == b'{"layers":[]}'  # the token is kept
    assert [url for url, _ in seen].count(
        "https://auth.example.com/token?service=reg&scope=repository%3Ateam%2Fm%3Apull"
    ) == 1
    assert len(seen) == 4


def test_second_401_is_unauthorized() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example.com":
            return httpx.Response(200, json={"token": "useless"})
        challenge = (
            'Bearer realm="https://auth.example.com/token",service="reg",scope="repository:team/m:pull"'
        )
        return httpx.Response(
            401, headers={"WWW-Authenticate": challenge}, json={"errors": [{"message": "no"}]}
        )

    with pytest.raises(Unauthorized, match=r"^unauthorized: access denied \(reg.example.com: no\)$"):
        scripted(handler).get_manifest()


def test_403_is_not_authorised() -> None:
    client = scripted(
        lambda r: httpx.Response(403, json={"errors": [{"code": "DENIED", "message": "denied"}]})
    )
    with pytest.raises(Unauthorized, match=r"^unauthorized: access denied to team/m \(403: denied\)$"):
        client.get_manifest()


def test_direct_url_follows_same_host_and_stops_at_a_cdn() -> None:
    digest = "sha256:" + "b" * 64

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["range"] == "bytes=0-0"
        if request.url.path.endswith(digest):
            return httpx.Response(307, headers={"Location": "/v2/team/m/blobs/moved"})
        return httpx.Response(302, headers={"Location": "https://cdn.example.net/signed?sig=1"})

    assert scripted(handler).direct_url(digest) == "https://cdn.example.net/signed?sig=1"
    same = scripted(lambda r: httpx.Response(206, content=b"x"))
    assert same.direct_url(digest) == f"https://reg.example.com/v2/team/m/blobs/{digest}"


def test_blob_size_follows_redirects_without_credentials() -> None:
    digest = "sha256:" + "b" * 64
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers.get("authorization")))
        if request.url.host == "reg.example.com":
            if request.headers.get("authorization") != "Bearer T":
                challenge = 'Bearer realm="https://reg.example.com/token",service="s",scope="x"'
                if request.url.path == "/token":
                    return httpx.Response(200, json={"token": "T"})
                return httpx.Response(401, headers={"WWW-Authenticate": challenge})
            return httpx.Response(307, headers={"Location": "https://cdn.example.net/blob?sig=1"})
        if request.url.params.get("sig") == "expired":
            return httpx.Response(403)
        return httpx.Response(200, headers={"Content-Length": "1234"})

    client = scripted(handler)
    assert client.blob_size(digest) == 1234
    assert ("cdn.example.net", None) in seen  # the registry's token stays with the registry

    def expired(request: httpx.Request) -> httpx.Response:
        if request.url.host == "reg.example.com":
            return httpx.Response(302, headers={"Location": "https://cdn.example.net/blob?sig=expired"})
        return httpx.Response(403)

    assert scripted(expired).blob_size(digest) is None  # falls back to the manifest's size


def test_policy_backoff() -> None:
    policy = Policy(backoff=1.0, max_backoff=10.0)
    assert [policy.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


# ---- manifests and progress -----------------------------------------------------------------
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


# ---- part state ------------------------------------------------------------------------------
def test_plan_follows_ollamas_sizing() -> None:
    mb = 1000 * 1000
    assert [p.size for p in parts.plan(250 * mb)] == [100 * mb, 100 * mb, 50 * mb]
    assert len(parts.plan(40_000 * mb)) == 40  # 2.5 GB each would exceed the 1 GB cap
    assert {p.size for p in parts.plan(4_800 * mb)} == {300 * mb} and len(parts.plan(4_800 * mb)) == 16
    assert parts.plan(0) == []
    plan = parts.plan(10, parts=3, min_size=1, max_size=100)
    assert [(p.n, p.offset, p.size) for p in plan] == [(0, 0, 3), (1, 3, 3), (2, 6, 3), (3, 9, 1)]


def test_part_state_round_trip_in_ollamas_format(tmp_path: Path) -> None:
    blob = tmp_path / ("sha256-" + "e" * 64)
    plan = parts.plan(10, parts=2, min_size=1, max_size=100)
    plan[0].completed = 4
    parts.partial_path(blob).write_bytes(b"\0" * 10)
    for part in plan:
        parts.save(blob, part)
    assert parts.part_path(blob, 0).read_text() == '{"N":0,"Offset":0,"Size":5,"Completed":4}\n'
    loaded = parts.load(blob, 10)
    assert loaded == plan and loaded[0].start == 4 and loaded[1].end == 10
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    assert parts.load(blob, 11) is None  # another size: start over
    parts.discard(blob)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "damage",
    ["torn", "gap", "too_far", "no_data", "wrong_n", "short_data"],
)
def test_part_state_that_cannot_be_trusted_is_ignored(tmp_path: Path, damage: str) -> None:
    blob = tmp_path / ("sha256-" + "f" * 64)
    plan = parts.plan(10, parts=2, min_size=1, max_size=100)
    parts.partial_path(blob).write_bytes(b"\0" * 10)
    for part in plan:
        parts.save(blob, part)
    if damage == "torn":
        parts.part_path(blob, 1).write_text('{"N":1,"Off')
    elif damage == "gap":
        parts.part_path(blob, 1).write_bytes(parts.Part(1, 6, 4).to_json())
    elif damage == "too_far":
        parts.part_path(blob, 0).write_bytes(parts.Part(0, 0, 5, 6).to_json())
    elif damage == "no_data":
        parts.partial_path(blob).unlink()
    elif damage == "wrong_n":
        parts.part_path(blob, 1).rename(parts.part_path(blob, 7))
    elif damage == "short_data":
        parts.save(blob, parts.Part(1, 5, 5, 5))
        parts.partial_path(blob).write_bytes(b"\0" * 4)
    assert parts.load(blob, 10) is None


def test_part_files_are_kept_by_store_housekeeping(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.ensure()
    blob = store.blob_path("sha256:" + "1" * 64)
    parts.partial_path(blob).write_bytes(b"x")
    parts.save(blob, parts.Part(0, 0, 1))
    for path in blob.parent.iterdir():
        os.utime(path, (0, 0))  # as if written long ago: prune's age limit would not protect them
    store.clean_temporary()
    store.prune(min_age=0)
    assert parts.load(blob, 1) is not None


# ---- the CLI's rendering ---------------------------------------------------------------------
def _events(verb: str) -> list[dict[str, object]]:
    digest = "sha256:" + "ab" * 32
    return [
        {"status": f"{verb} manifest"},
        {"status": f"{verb} abababababab", "digest": digest, "total": 2_000_000, "completed": 500_000},
        {"status": f"{verb} abababababab", "digest": digest, "total": 2_000_000, "completed": 2_000_000},
        {"status": "success"},
    ]


def test_progress_bars_on_a_terminal() -> None:
    out = io.StringIO()
    view = ProgressView(out, tty=True)
    for event in _events("pulling"):
        view.update(event)
    view.close()
    text = out.getvalue()
    assert text.startswith("pulling manifest\n") and text.endswith("success\n")
    assert "pulling abababababab: 100% ▕" in text and "2.00M" in text and "B/s" in text


def test_plain_lines_without_a_terminal() -> None:
    out = io.StringIO()
    view = ProgressView(out, tty=False)
    for event in _events("pushing"):
        view.update(event)
    view.close()
    assert out.getvalue() == "pushing manifest\npushing abababababab: 100% 2 MB\nsuccess\n"
