"""Test kit for the registry tests: Debian's real ``docker-registry`` and a scriptable proxy.

The proxy is a small HTTP/1.1 reverse proxy on loopback (asyncio, one request per
connection).  A ``rule`` looks at each request and may answer it itself (a token server,
a 401 challenge, a 503, a redirect) or shape the upstream's response body: throttle it,
cut the connection after N bytes, or flip a byte.  It records every exchange, so tests
can count the blob bytes that really crossed the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from llamita.server.registry import parts
from llamita.server.registry.push import push
from llamita.server.store.blobs import CONFIG_MEDIA_TYPE, Layer, Store
from llamita.server.store.names import Name, parse_name

DOCKER_REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Registry:
    """A running docker-registry (distribution 2.x) with filesystem storage under ``root``."""

    port: int
    root: Path
    process: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def blob_data(self, digest: str) -> Path:
        hexdigest = digest.split(":", 1)[1]
        return self.root / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_registry(directory: Path, htpasswd: Path | None = None) -> Registry:
    port = free_port()
    storage = directory / "storage"
    storage.mkdir(parents=True)
    auth = f"auth:\n  htpasswd:\n    realm: test-realm\n    path: {htpasswd}\n" if htpasswd else ""
    config = directory / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n" + auth
    )
    log = open(directory / "registry.log", "wb")  # noqa: SIM115 - handed to the child process
    process = subprocess.Popen([DOCKER_REGISTRY, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 15
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code in (200, 401):
                return Registry(port, storage, process)
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("docker-registry did not start: " + (directory / "registry.log").read_text())
        time.sleep(0.05)


# ---- the proxy ---------------------------------------------------------------------------
@dataclass
class Exchange:
    """One request seen by the proxy, and how many response-body bytes it sent back."""

    method: str
    path: str
    headers: dict[str, str]
    status: int = 0
    body_bytes: int = 0

    @property
    def is_blob_get(self) -> bool:
        return self.method == "GET" and "/blobs/sha256:" in self.path


@dataclass
class Action:
    """What to do with one request: answer it here, or forward it and shape the response."""

    respond: tuple[int, dict[str, str], bytes] | None = None
    rate: float | None = None  # bytes per second for the response body
    cut_after: int | None = None  # drop the connection after this many body bytes
    corrupt_at: int | None = None  # flip the byte at this body offset
    strip_auth: bool = False  # do not pass Authorization upstream


Rule = Callable[[Exchange], Action | None]


@dataclass
class Proxy:
    upstream_port: int
    rule: Rule | None = None
    exchanges: list[Exchange] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def blob_bytes(self) -> int:
        return sum(e.body_bytes for e in list(self.exchanges) if e.is_blob_get)

    def start(self) -> Proxy:
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*tasks, server.wait_closed(), return_exceptions=True))
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._exchange(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._tasks.discard(task)

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = [tuple(line.split(":", 1)) for line in lines[1:] if ":" in line]
        exchange = Exchange(method, target, {k.strip().lower(): v.strip() for k, v in headers})
        self.exchanges.append(exchange)
        action = (self.rule(exchange) if self.rule else None) or Action()

        if action.respond is not None:
            length = int(exchange.headers.get("content-length") or 0)
            if length:
                await reader.readexactly(length)
            status, extra, body = action.respond
            exchange.status = status
            out = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
            out += [f"{k}: {v}" for k, v in extra.items()]
            writer.write(("\r\n".join(out) + "\r\n\r\n").encode() + (body if method != "HEAD" else b""))
            await writer.drain()
            return

        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        skip = {"connection", "keep-alive"} | ({"authorization"} if action.strip_auth else set())
        forward = [f"{method} {target} {version}"]
        forward += [f"{k.strip()}: {v.strip()}" for k, v in headers if k.strip().lower() not in skip]
        forward.append("Connection: close")
        up_writer.write(("\r\n".join(forward) + "\r\n\r\n").encode("latin-1"))
        await up_writer.drain()
        pump = asyncio.ensure_future(_pipe(reader, up_writer))
        try:
            response_head = await up_reader.readuntil(b"\r\n\r\n")
            exchange.status = int(response_head.split(b" ", 2)[1])
            writer.write(response_head)
            offset = 0
            while chunk := await up_reader.read(64 * 1024):
                if action.corrupt_at is not None and offset <= action.corrupt_at < offset + len(chunk):
                    i = action.corrupt_at - offset
                    chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1 :]
                if action.cut_after is not None and offset + len(chunk) >= action.cut_after:
                    chunk = chunk[: action.cut_after - offset]
                    writer.write(chunk)
                    exchange.body_bytes += len(chunk)
                    await writer.drain()
                    writer.transport.abort()
                    return
                writer.write(chunk)
                await writer.drain()
                exchange.body_bytes += len(chunk)
                offset += len(chunk)
                if action.rate:
                    await asyncio.sleep(len(chunk) / action.rate)
        finally:
            pump.cancel()
            up_writer.close()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
            with contextlib.suppress(Exception):
                await up_writer.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(64 * 1024):
            writer.write(data)
            await writer.drain()


# ---- synthetic models -----------------------------------------------------------------------
def synthetic_model(store: Store, name: str, size: int, seed: int = 0) -> tuple[Name, str]:
    """A model whose "GGUF" is ``size`` pseudo-random bytes; returns (name, model digest).

    Pull and push never look inside blobs, so resume/corruption tests need no real model.
    """
    block = hashlib.sha256(f"{seed}".encode()).digest() * 2048  # 64 KiB
    data = os.urandom(16) + (block * (size // len(block) + 1))[: size - 16]
    model_digest, model_size = store.write_blob([data])
    config_digest, config_size = store.write_blob([b'{"model_format":"gguf","seed":%d}\n' % seed])
    parsed = parse_name(name)
    store.write_manifest(
        parsed,
        Layer(CONFIG_MEDIA_TYPE, config_digest, config_size),
        [Layer(MODEL_MEDIA_TYPE, model_digest, model_size)],
    )
    return parsed, model_digest


def published(registry: Registry, tmp_path: Path, size: int, seed: int = 0) -> str:
    """Push a synthetic ``team/big:1`` of ``size`` bytes to the registry; returns its model digest."""
    source = Store(tmp_path / f"source-{seed}")
    source.ensure()
    name, digest = synthetic_model(source, f"{registry.host}/team/big:1", size, seed)
    drain(push(source, name, insecure=True))
    return digest


def via(host: str) -> str:
    """``published``'s model as seen through a proxy (blobs are keyed by digest, not by name)."""
    return f"{host}/team/big:1"


def name_via(host: str) -> Name:
    return parse_name(via(host))


def range_gets(exchanges: list[Exchange], digest: str) -> list[str]:
    """The Range headers of the part requests for one blob (not the one-byte redirect probe)."""
    return [
        e.headers.get("range", "")
        for e in exchanges
        if e.is_blob_get and e.path.endswith(digest) and e.headers.get("range") != "bytes=0-0"
    ]


def leave_partial(store: Store, digest: str, data: bytes, plan: list[parts.Part]) -> Path:
    """What an interrupted Ollama leaves: a full-length sparse data file and one state per part.

    Each part's first ``completed`` bytes of ``data`` are written at its offset.
    """
    store.ensure()
    blob = store.blob_path(digest)
    with open(parts.partial_path(blob), "wb") as f:
        f.truncate(len(data))
        for part in plan:
            f.seek(part.offset)
            f.write(data[part.offset : part.start])
        f.flush()
        os.fsync(f.fileno())
    for part in plan:
        parts.save(blob, part)
    return blob


def store_files(store: Store) -> set[str]:
    """Every file under the store, relative (what "the store is unchanged" compares)."""
    return {str(p.relative_to(store.root)) for p in store.root.rglob("*") if p.is_file()}


def drain(events: Iterator[dict[str, object]]) -> list[dict[str, object]]:
    return list(events)
