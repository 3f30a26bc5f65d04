"""client.py: registry URLs (hf.co included), auth retries, redirects, retries and messages.

Scripted transports pin the exact request sequences; the last tests run against a real
docker-registry behind a recording proxy.
"""

from __future__ import annotations

import base64

import httpx
import pytest

from llamita.server.registry.client import (
    Policy,
    RegistryClient,
    base_url,
    blob_url,
    manifest_url,
    upload_url,
)
from llamita.server.registry.errors import InsecureProtocol, RegistryError, RegistryUnavailable, Unauthorized
from llamita.server.registry.pull import pull
from llamita.server.registry.push import push
from llamita.server.store.blobs import Store
from llamita.server.store.names import parse_name

from .regkit import Action, Registry, drain, free_port, store_files, synthetic_model

FAST = Policy(backoff=0.01)


# ---- URLs ------------------------------------------------------------------------------------
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


# ---- the HTTP client against scripted transports ---------------------------------------------
def scripted(handler) -> RegistryClient:
    return RegistryClient(
        parse_name("reg.example.com/team/m:1"),
        policy=Policy(backoff=0),
        transport=httpx.MockTransport(handler),
        sleep=lambda s: None,
    )


def test_bearer_flow_fetches_a_token_once_and_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The token realm is on the registry's own host, so it gets the credentials (see
    test_auth.py for realms on other hosts, which never do)."""
    monkeypatch.setenv("LLAMITA_REGISTRY_AUTH", "reg.example.com=u:p")
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        if request.url.path == "/token":
            assert request.headers["authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
            return httpx.Response(200, json={"token": "TOKEN"})
        if request.headers.get("authorization") != "Bearer TOKEN":
            challenge = (
                'Bearer realm="https://reg.example.com/token",service="reg",scope="repository:team/m:pull"'
            )
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        return httpx.Response(200, content=b'{"layers":[]}')

    client = scripted(handler)
    assert client.get_manifest() == b'{"layers":[]}'
    assert client.get_manifest() == b'{"layers":[]}'  # the token is kept
    assert [url for url, _ in seen].count(
        "https://reg.example.com/token?service=reg&scope=repository%3Ateam%2Fm%3Apull"
    ) == 1
    assert len(seen) == 4


def test_an_unrelated_auth_host_gets_no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """auth.example.com is neither reg.example.com nor its known auth host: asked anonymously."""
    monkeypatch.setenv("LLAMITA_REGISTRY_AUTH", "reg.example.com=u:p")
    realm_auth: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example.com":
            realm_auth.append(request.headers.get("authorization"))
            return httpx.Response(200, json={"token": "ANON"})
        if request.headers.get("authorization") != "Bearer ANON":
            challenge = (
                'Bearer realm="https://auth.example.com/token",service="reg",scope="repository:team/m:pull"'
            )
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        return httpx.Response(200, content=b'{"layers":[]}')

    assert scripted(handler).get_manifest() == b'{"layers":[]}'
    assert realm_auth == [None]


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


# ---- against a real registry -----------------------------------------------------------------
def test_registry_down_says_so(store: Store) -> None:
    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(RegistryUnavailable) as e:
        drain(pull(store, parse_name(f"{host}/team/model:1"), insecure=True, policy=FAST))
    assert str(e.value) == f"pull model manifest: could not connect to registry {host}: connection refused"
    assert store_files(store) == set()


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
