"""Fixtures for the registry tests: a real docker-registry per test, and proxies in front of it."""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from llamita.server.registry.download import BlobDownload, Downloads
from llamita.server.store.blobs import Store

from .regkit import DOCKER_REGISTRY, Proxy, Registry, Rule, start_registry


def _require_registry() -> None:
    if not os.access(DOCKER_REGISTRY, os.X_OK):
        pytest.skip("docker-registry is not installed (apt-get install docker-registry; .ci/run does)")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    """Debian's docker-registry on a free loopback port, storage in tmp_path, stopped afterwards."""
    _require_registry()
    reg = start_registry(tmp_path / "registry")
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def auth_registry(tmp_path: Path) -> Iterator[Registry]:
    """The same registry behind htpasswd Basic auth: user ``ci``, password ``s3cret``."""
    _require_registry()
    htpasswd = shutil.which("htpasswd")
    if htpasswd is None:
        pytest.skip("htpasswd is not installed (apt-get install apache2-utils; .ci/run does)")
    line = subprocess.run([htpasswd, "-Bbn", "ci", "s3cret"], capture_output=True, text=True, check=True)
    path = tmp_path / "htpasswd"
    path.write_text(line.stdout.strip() + "\n")
    reg = start_registry(tmp_path / "auth-registry", htpasswd=path)
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def proxy() -> Iterator[Callable[..., Proxy]]:
    """``proxy(upstream_port, rule)``: a started proxy, stopped after the test."""
    started: list[Proxy] = []

    def make(upstream_port: int, rule: Rule | None = None) -> Proxy:
        started.append(Proxy(upstream_port, rule).start())
        return started[-1]

    yield make
    for p in started:
        p.stop()


@pytest.fixture(autouse=True)
def _no_download_left_behind() -> Iterator[None]:
    """Every test must leave no background download running (they would leak across tests).

    Downloads hang off the store they write into, so every store still alive is checked.
    """
    yield
    running = _running_downloads()
    for job in running:
        job.cancel()
        job.thread.join(10)
    assert not [j for j in running if j.thread.is_alive()]


def _running_downloads() -> list[BlobDownload]:
    stores = [obj for obj in gc.get_objects() if isinstance(obj, Store)]
    return [job for store in stores for job in Downloads(store).running()]


@pytest.fixture(autouse=True)
def _no_registry_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LLAMITA_REGISTRY_AUTH", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
