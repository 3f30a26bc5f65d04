"""Helpers for tests that need a server built *after* they set the environment.

``build_app`` reads keys, limits and the metrics switch once, so a test sets its variables
first and then calls :func:`serve_app`.  :func:`serve_cli` starts a real ``llamita serve``
subprocess, for what only the command does (TLS, SIGHUP, the start-up warning).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette


class _ThreadServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test thread owns signals
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_app(app: Starlette) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread on a free loopback port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = _ThreadServer(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextlib.contextmanager
def serve_cli(
    env: dict[str, str], port: int, log: Path, url: str | None = None, **client: Any
) -> Iterator[subprocess.Popen[bytes]]:
    """``llamita serve`` as a subprocess with ``env`` added; waits until ``/api/version`` answers.

    ``client`` goes to the httpx probe (``verify=`` for an https server at ``url``).
    """
    url = url or f"http://127.0.0.1:{port}"
    full_env = {**os.environ, "OLLAMA_HOST": f"127.0.0.1:{port}", "LLAMITA_NO_DEFAULT_MODEL": "1", **env}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llamita.server.cli", "serve"],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llamita serve exited with {proc.returncode}:\n{log.read_text()}")
            try:
                httpx.get(url + "/api/version", timeout=1, **client).raise_for_status()
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"llamita serve did not answer:\n{log.read_text()}") from None
                time.sleep(0.1)
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 10 s: never leave a server behind."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
