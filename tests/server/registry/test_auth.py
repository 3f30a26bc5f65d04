"""auth.py: challenges, token replies and where credentials come from.

The last tests use them for real: docker-registry's htpasswd (Basic), and a bearer token
server with a CDN in front of it (a recording proxy).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from llamita.server.registry import auth
from llamita.server.registry.errors import Unauthorized
from llamita.server.registry.pull import pull
from llamita.server.registry.push import push
from llamita.server.store.blobs import Store
from llamita.server.store.names import parse_name

from .regkit import Action, Exchange, Registry, drain, synthetic_model

BASIC = "Basic " + base64.b64encode(b"ci:s3cret").decode()


# ---- challenges and credentials --------------------------------------------------------------
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


@pytest.mark.parametrize(
    ("realm", "registry", "allowed"),
    [
        # Ollama's own cases (server/auth_test.go TestGetAuthorizationTokenRejectsCrossDomain).
        ("https://example.com/token", "example.com", True),
        ("https://example.com/token", "other.com", False),
        ("https://example.com/token", "localhost:8000", False),
        ("https://localhost:5000/token", "localhost:5000", True),
        ("https://localhost:5000/token", "localhost:6000", False),
        # Ports: the scheme's default counts as written; another port is another host.
        ("https://example.com:443/token", "example.com", True),
        ("https://example.com:8443/token", "example.com", False),
        ("https://EXAMPLE.com/token", "example.COM", True),
        # Known auth hosts, over https on 443 only.
        ("https://ollama.com/token", "registry.ollama.ai", True),
        ("https://ollama.com:8443/token", "registry.ollama.ai", False),
        ("https://auth.docker.io/token", "registry-1.docker.io", True),
        ("https://huggingface.co/v2/token", "hf.co", True),
        ("https://ollama.com/token", "example.com", False),
        ("https://auth.docker.io.evil.example/token", "registry-1.docker.io", False),
        # Plain http: only a loopback registry with a loopback realm (the test registries).
        ("http://ollama.com/token", "registry.ollama.ai", False),
        ("http://example.com/token", "example.com", False),
        ("http://127.0.0.1:5000/token", "127.0.0.1:5000", True),
        ("http://127.0.0.1:5000/token", "192.168.1.2:5000", False),
        ("http://localhost:5001/token", "127.0.0.1:5000", False),
        ("ftp://example.com/token", "example.com", False),
        ("/token", "example.com", False),
    ],
)
def test_which_realms_get_credentials(realm: str, registry: str, allowed: bool) -> None:
    scheme = "http" if realm.startswith("http://") else "https"
    assert (auth.realm_refusal(realm, registry, scheme) == "") is allowed


# ---- against a real registry -----------------------------------------------------------------
def test_htpasswd_registry(auth_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = Store(tmp_path / "source")
    name, digest = synthetic_model(source, f"{auth_registry.host}/team/private:1", 500_000)

    with pytest.raises(Unauthorized) as e:
        drain(push(source, name, insecure=True))
    assert str(e.value).startswith("unauthorized: access denied;")
    assert "LLAMITA_REGISTRY_AUTH" in str(e.value)

    monkeypatch.setenv("LLAMITA_REGISTRY_AUTH", f"{auth_registry.host}=ci:wrong")
    with pytest.raises(Unauthorized, match=r"^unauthorized: access denied \("):
        drain(push(source, name, insecure=True))

    monkeypatch.setenv("LLAMITA_REGISTRY_AUTH", f"other.example:5000=x:y,{auth_registry.host}=ci:s3cret")
    assert drain(push(source, name, insecure=True))[-1] == {"status": "success"}

    # Docker's config.json works as well (what `docker login` writes).
    monkeypatch.delenv("LLAMITA_REGISTRY_AUTH")
    config = Path(tmp_path / "docker-config" / "config.json")
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"auths": {f"http://{auth_registry.host}": {"auth": BASIC.split()[1]}}}))
    target = Store(tmp_path / "target")
    assert drain(pull(target, name, insecure=True))[-1] == {"status": "success"}
    target.verify_blob(digest)


def test_bearer_token_server_and_cdn_redirect(registry: Registry, proxy, tmp_path: Path, monkeypatch) -> None:
    """A registry front that wants bearer tokens and redirects blob downloads to another host."""
    source = Store(tmp_path / "source")
    name, digest = synthetic_model(source, f"{registry.host}/team/model:1", 3_000_000)
    drain(push(source, name, insecure=True))
    scopes: list[list[str]] = []
    cdn = proxy(registry.port)

    def front_rule(ex: Exchange) -> Action:
        if ex.path.startswith("/token"):
            if ex.headers.get("authorization") != BASIC:
                return Action(respond=(401, {}, b'{"details":"bad credentials"}'))
            query = parse_qs(urlsplit(ex.path).query)
            assert query["service"] == ["test-registry"]
            scopes.append(query["scope"])
            token = json.dumps({"token": "T-" + ",".join(query["scope"])}).encode()
            return Action(respond=(200, {"Content-Type": "application/json"}, token))
        scope = "pull" if ex.method in ("GET", "HEAD") else "pull,push"
        if (
            ex.headers.get("authorization", "").startswith("Bearer T-")
            and scope in ex.headers["authorization"]
        ):
            if ex.is_blob_get:  # the bytes live on "another host": localhost instead of 127.0.0.1
                return Action(respond=(307, {"Location": f"http://localhost:{cdn.port}{ex.path}"}, b""))
            return Action(strip_auth=True)
        challenge = f'Bearer realm="http://{front.host}/token",service="test-registry",scope="repository:team/model:{scope}"'
        return Action(respond=(401, {"WWW-Authenticate": challenge}, b'{"errors":[{"code":"UNAUTHORIZED"}]}'))

    front = proxy(registry.port, front_rule)
    remote = parse_name(f"{front.host}/team/model:1")

    with pytest.raises(Unauthorized, match="LLAMITA_REGISTRY_AUTH"):
        drain(pull(Store(tmp_path / "anonymous"), remote, insecure=True))

    monkeypatch.setenv("LLAMITA_REGISTRY_AUTH", "ci:s3cret")
    target = Store(tmp_path / "target")
    assert drain(pull(target, remote, insecure=True))[-1] == {"status": "success"}
    target.verify_blob(digest)
    assert ["repository:team/model:pull"] in scopes
    blob_gets = [e for e in cdn.exchanges if e.is_blob_get]
    assert blob_gets and not [e for e in blob_gets if "authorization" in e.headers]  # no token to the CDN
    assert cdn.blob_bytes() >= 3_000_000 and front.blob_bytes() == 0

    # Push through the same front: uploads need the pull,push scope, fetched on their 401.
    again = Store(tmp_path / "again")
    pushed_name, pushed_digest = synthetic_model(again, f"{front.host}/team/model:2", 200_000, seed=7)
    assert drain(push(again, pushed_name, insecure=True))[-1] == {"status": "success"}
    assert ["repository:team/model:pull,push"] in scopes
    assert registry.blob_data(pushed_digest).is_file()


def test_credentials_never_go_to_a_foreign_realm(
    registry: Registry, proxy, tmp_path: Path, monkeypatch
) -> None:
    """A registry whose challenge names a token realm on another host (``localhost`` instead of
    ``127.0.0.1``: two real HTTP servers): the realm is asked anonymously, never with the secret."""
    source = Store(tmp_path / "source")
    name, digest = synthetic_model(source, f"{registry.host}/team/model:1", 100_000)
    drain(push(source, name, insecure=True))
    anonymous_tokens = [True]

    def realm_rule(ex: Exchange) -> Action:
        if "authorization" not in ex.headers and anonymous_tokens[0]:
            return Action(respond=(200, {"Content-Type": "application/json"}, b'{"token": "anon"}'))
        return Action(respond=(401, {}, b'{"details":"credentials wanted"}'))

    realm = proxy(registry.port, realm_rule)

    def front_rule(ex: Exchange) -> Action:
        if ex.headers.get("authorization") == "Bearer anon":
            return Action(strip_auth=True)
        challenge = f'Bearer realm="http://localhost:{realm.port}/token",service="s",scope="repository:team/model:pull"'
        return Action(respond=(401, {"WWW-Authenticate": challenge}, b'{"errors":[{"code":"UNAUTHORIZED"}]}'))

    front = proxy(registry.port, front_rule)
    remote = parse_name(f"{front.host}/team/model:1")
    monkeypatch.setenv("LLAMITA_REGISTRY_AUTH", "ci:s3cret")

    target = Store(tmp_path / "target")
    assert drain(pull(target, remote, insecure=True))[-1] == {"status": "success"}
    target.verify_blob(digest)
    assert realm.exchanges and not [e for e in realm.exchanges if "authorization" in e.headers]

    anonymous_tokens[0] = False  # a realm that wants the credentials gets a clear refusal, not them
    with pytest.raises(
        Unauthorized, match=r"credentials were not sent because the token realm's host localhost"
    ):
        drain(pull(Store(tmp_path / "refused"), remote, insecure=True))
    assert not [e for e in realm.exchanges if "authorization" in e.headers]
