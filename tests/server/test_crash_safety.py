"""kill -9 during writes: a restarted server finds the store unchanged or complete."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llamita.server.store.blobs import Store
from llamita.server.store.names import require_name

pytestmark = [pytest.mark.model, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(models: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        "OLLAMA_HOST": f"127.0.0.1:{port}",
        "OLLAMA_MODELS": str(models),
        "LLAMITA_NO_DEFAULT_MODEL": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "llamita.server.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def _temp_files(models: Path) -> list[Path]:
    return [p for p in models.rglob(".tmp-*")]


def test_kill_during_blob_upload(tmp_path: Path) -> None:
    models = tmp_path / "models"
    proc, url = _start(models)
    data = os.urandom(1 << 20)
    digest = "sha256:" + hashlib.sha256(data * 64).hexdigest()
    sent = threading.Event()

    def slow_body() -> Iterator[bytes]:
        for i in range(64):
            yield data
            if i == 8:
                sent.set()
                time.sleep(30)  # the server is killed while we wait

    def upload() -> None:
        with contextlib.suppress(httpx.TransportError):
            httpx.post(f"{url}/api/blobs/{digest}", content=slow_body(), timeout=60)

    thread = threading.Thread(target=upload, daemon=True)
    thread.start()
    assert sent.wait(30)
    deadline = time.monotonic() + 10
    while not _temp_files(models) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _temp_files(models), "the upload should be in progress in a temp file"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    proc, url = _start(models)
    try:
        assert _temp_files(models) == []
        assert httpx.head(f"{url}/api/blobs/{digest}").status_code == 404
        assert httpx.get(f"{url}/api/tags").json() == {"models": []}
    finally:
        proc.kill()
        proc.wait()


def test_kill_during_create_leaves_old_or_new(tmp_path: Path, seeded_models: Path) -> None:
    """Many creates of one name, killed at a random moment: the manifest is always whole."""
    models = tmp_path / "models"
    from conftest import _link_tree

    _link_tree(seeded_models, models)
    proc, url = _start(models)
    stop = threading.Event()

    def hammer() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                httpx.post(
                    f"{url}/api/create",
                    json={
                        "model": "victim",
                        "from": "smollm2:135m",
                        "system": f"version {i}",
                        "stream": False,
                    },
                    timeout=30,
                )
            except httpx.TransportError:
                return

    thread = threading.Thread(target=hammer, daemon=True)
    thread.start()
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stop.set()
    thread.join(timeout=30)

    store = Store(models)
    manifest = store.get(require_name("victim"))
    if manifest is not None:  # complete: every layer it names is present and intact
        for layer in [manifest.config, *manifest.layers]:
            store.verify_blob(layer.digest)
    proc, url = _start(models)
    try:
        assert _temp_files(models) == []
        names = {m["name"] for m in httpx.get(f"{url}/api/tags").json()["models"]}
        assert "smollm2:135m" in names
    finally:
        proc.kill()
        proc.wait()
