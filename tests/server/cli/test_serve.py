"""``llamita serve`` as a remote box: https, a keys file rotated with SIGHUP, the start-up checks."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import ollama
import pytest
from serving import free_port, serve_cli

from llamita.server.cli import serve as serve_module
from llamita.server.cli.serve import TLSConfigError, tls_options
from llamita.server.client import Client, ResponseError

pytestmark = pytest.mark.slow


@pytest.fixture
def cert(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (.ci/run installs it)")
    crt, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *(
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
            ),
            *("-keyout", str(key), "-out", str(crt), "-days", "2", "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    return crt, key


def test_tls_options(monkeypatch: pytest.MonkeyPatch, cert: tuple[Path, Path], tmp_path: Path) -> None:
    crt, key = cert
    monkeypatch.delenv("LLAMITA_TLS_CERT", raising=False)
    monkeypatch.delenv("LLAMITA_TLS_KEY", raising=False)
    assert tls_options() == {}
    monkeypatch.setenv("LLAMITA_TLS_CERT", str(crt))
    with pytest.raises(TLSConfigError, match="both"):
        tls_options()
    monkeypatch.setenv("LLAMITA_TLS_KEY", str(tmp_path / "absent.pem"))
    with pytest.raises(TLSConfigError, match="not found"):
        tls_options()
    monkeypatch.setenv("LLAMITA_TLS_KEY", str(key))
    assert tls_options() == {"ssl_certfile": str(crt), "ssl_keyfile": str(key)}


def test_https_box_with_rotated_keys(
    tmp_path: Path, cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    crt, key = cert
    keys = tmp_path / "keys"
    keys.write_text("# team\nfirst-key\n")
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    trust = ssl.create_default_context(cafile=str(crt))
    env = {
        "LLAMITA_TLS_CERT": str(crt),
        "LLAMITA_TLS_KEY": str(key),
        "LLAMITA_API_KEYS_FILE": str(keys),
        "OLLAMA_MODELS": str(tmp_path / "models"),
    }
    log = tmp_path / "serve.log"
    with serve_cli(env, port, log, url=url, verify=trust) as proc:
        # The official client, trusting the self-signed certificate, with and without the key.
        with ollama.Client(host=url, verify=trust, headers={"Authorization": "Bearer first-key"}) as good:
            assert good.list().models == []
        with ollama.Client(host=url, verify=trust) as anonymous, pytest.raises(ollama.ResponseError) as info:
            anonymous.list()
        assert info.value.status_code == 401 and info.value.error == "unauthorized"
        # Certificates are verified: an untrusting client is refused by TLS itself.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(url + "/api/version")

        # The CLI's client: https in OLLAMA_HOST, the CA from LLAMITA_TLS_CA, the key from LLAMITA_API_KEY.
        monkeypatch.setenv("OLLAMA_HOST", url)
        monkeypatch.setenv("LLAMITA_TLS_CA", str(crt))
        monkeypatch.setenv("LLAMITA_API_KEY", "first-key")
        with Client() as cli:
            assert cli.list() == []

        # Rotate: the new file has the same mtime, so only SIGHUP can make the server see it.
        stat = keys.stat()
        keys.write_text("second-key\n")
        os.utime(keys, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while _status(url, trust, "second-key") != 200:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert _status(url, trust, "first-key") == 401
        with Client() as cli, pytest.raises(ResponseError) as refused:
            cli.list()
        assert refused.value.status == 401
    text = log.read_text()
    assert "first-key" not in text and "second-key" not in text  # keys are never logged
    assert "API keys required (1 configured)" in text and "Listening on https://" in text


def _status(url: str, trust: ssl.SSLContext, key: str) -> int:
    return httpx.get(url + "/api/tags", verify=trust, headers={"Authorization": f"Bearer {key}"}).status_code


def test_bad_tls_config_exits_with_an_error(tmp_path: Path) -> None:
    env = {**os.environ, "LLAMITA_TLS_CERT": str(tmp_path / "cert.pem"), "LLAMITA_NO_DEFAULT_MODEL": "1"}
    env.pop("LLAMITA_TLS_KEY", None)
    out = subprocess.run(
        [sys.executable, "-m", "llamita.server.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "set both LLAMITA_TLS_CERT and LLAMITA_TLS_KEY" in out.stderr


def test_serve_wires_tls_and_warns_when_exposed(
    tmp_path: Path, cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """serve() itself, with uvicorn.run replaced (nothing is bound): the open-to-the-network warning
    and the ssl options reach uvicorn."""
    crt, key = cert
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(serve_module.uvicorn, "run", lambda app, **kwargs: calls.append(kwargs))
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:11555")
    monkeypatch.setenv("LLAMITA_NO_DEFAULT_MODEL", "1")
    monkeypatch.setenv("LLAMITA_TLS_CERT", str(crt))
    monkeypatch.setenv("LLAMITA_TLS_KEY", str(key))
    monkeypatch.delenv("LLAMITA_API_KEYS", raising=False)
    monkeypatch.delenv("LLAMITA_API_KEYS_FILE", raising=False)
    with caplog.at_level(logging.INFO, logger="llamita"):
        assert serve_module.serve() == 0
    assert calls[0]["host"] == "0.0.0.0" and calls[0]["port"] == 11555
    assert calls[0]["ssl_certfile"] == str(crt) and calls[0]["ssl_keyfile"] == str(key)
    assert any("NO API KEY" in r.message and r.levelno == logging.WARNING for r in caplog.records)

    calls.clear()
    caplog.clear()
    monkeypatch.setenv("LLAMITA_API_KEYS", "k1,k2")
    with caplog.at_level(logging.INFO, logger="llamita"):
        assert serve_module.serve() == 0
    assert not any("NO API KEY" in r.message for r in caplog.records)
    assert any("API keys required (2 configured)" in r.message for r in caplog.records)
