"""Start and stop the servers a side-by-side benchmark compares: ``llamita serve`` and llama-server.

The figures only mean something when one server runs at a time on the same GGUF (a second
llama.cpp process, even an idle one, takes memory and cores), so :func:`running` starts one,
waits until it answers its health check, yields its ``fim_load.py`` target, and always stops it
again (SIGTERM, then SIGKILL), whatever the benchmark does in between.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BUILD_HELP = """\
llama-server is not part of llama-cpp-python's wheel; build it from the llama.cpp sources vendored in
the llama-cpp-python 0.3.36 sdist (pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36):
  cd llama_cpp_python-0.3.36/vendor/llama.cpp
  cmake -B build -DLLAMA_CURL=OFF -DGGML_NATIVE=ON          # add -DGGML_CUDA=on for a GPU build
  cmake --build build --target llama-server -j
then pass --llama-server llama_cpp_python-0.3.36/vendor/llama.cpp/build/bin/llama-server
(or set LLAMA_SERVER, or put llama-server on PATH)."""

LLAMITA_MODEL = "bench"  # the name the GGUF is created under in llamita's store


@dataclass
class Server:
    """One server to start: its command, environment, health path and fim_load target kind."""

    name: str
    kind: str  # fim_load's backend kind: "ollama" or "llama-server"
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    health: str = "/health"
    model: str | None = None
    modelfile: str | None = None  # llamita: created as LLAMITA_MODEL once the server answers
    port: int = 0

    def target(self, url: str) -> str:
        """The ``--compare`` spec fim_load.py takes: ``NAME=KIND@URL[#MODEL]``."""
        return f"{self.name}={self.kind}@{url}" + (f"#{self.model}" if self.model else "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_llama_server(given: str | None) -> Path:
    """The llama-server binary from --llama-server, $LLAMA_SERVER or PATH; exits with build help."""
    candidate = given or os.environ.get("LLAMA_SERVER") or shutil.which("llama-server")
    if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
        return Path(candidate).resolve()
    where = f" (not an executable file: {candidate})" if candidate else ""
    raise SystemExit(f"llama-server not found{where}.\n{BUILD_HELP}")


def llama_server_argv(
    binary: Path, gguf: Path, port: int, *, ctx: int, parallel: int, threads: int | None, ngl: int | None
) -> list[str]:
    """llama-server on loopback: ``-c`` is the whole context, shared by ``-np`` slots."""
    argv = [str(binary), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["-c", str(ctx * parallel), "-np", str(parallel)]
    if threads:
        argv += ["-t", str(threads)]
    if ngl is not None:
        argv += ["-ngl", str(ngl)]
    return argv


def llama_server(
    name: str, binary: Path, gguf: Path, *, ctx: int, parallel: int, threads: int | None, ngl: int | None
) -> Server:
    port = free_port()
    argv = llama_server_argv(binary, gguf, port, ctx=ctx, parallel=parallel, threads=threads, ngl=ngl)
    return Server(name, "llama-server", argv, health="/health", port=port)


def modelfile_text(gguf: Path, parameters: dict[str, int]) -> str:
    """FROM the GGUF plus PARAMETER lines (num_thread, num_gpu, num_ctx) for llamita's create."""
    lines = [f"FROM {gguf.resolve()}"] + [f"PARAMETER {k} {v}" for k, v in parameters.items()]
    return "\n".join(lines) + "\n"


def llamita(name: str, gguf: Path, models: Path, parameters: dict[str, int], env: dict[str, str]) -> Server:
    """``llamita serve`` (this interpreter's llamita) on a free port with its own model store."""
    port = free_port()
    full_env = {
        "OLLAMA_HOST": f"127.0.0.1:{port}",
        "OLLAMA_MODELS": str(models),
        "OLLAMA_KEEP_ALIVE": "-1",  # no unload between two phases
        "LLAMITA_NO_DEFAULT_MODEL": "1",  # the store holds only the GGUF under test
        **env,
    }
    argv = [sys.executable, "-m", "llamita.server.cli", "serve"]
    text = modelfile_text(gguf, parameters)
    return Server(name, "ollama", argv, full_env, "/api/version", LLAMITA_MODEL, text, port)


def _wait_healthy(server: Server, proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float) -> None:
    """Poll the health path until it answers 200 (llama-server answers 503 while it loads)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {proc.returncode}; log {log}:\n{_tail(log)}")
        try:
            if httpx.get(url + server.health, timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} did not answer in {timeout:.0f} s; log {log}:\n{_tail(log)}")
        time.sleep(0.25)


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _create(server: Server, env: dict[str, str], log: Path) -> None:
    """``llamita create bench -f Modelfile`` against the running server (the user's path)."""
    with tempfile.TemporaryDirectory(prefix="llamita-bench-") as tmp:
        modelfile = Path(tmp) / "Modelfile"
        modelfile.write_text(server.modelfile or "")
        cmd = [sys.executable, "-m", "llamita.server.cli", "create", LLAMITA_MODEL, "-f", str(modelfile)]
        with open(log, "ab") as out:
            done = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=1800)
    if done.returncode:
        raise RuntimeError(f"llamita create failed ({done.returncode}); log {log}:\n{_tail(log)}")


def _load(server: Server, url: str, timeout: float) -> None:
    """One token, so that loading the model is not charged to fim_load's warm-up (it waits 120 s)."""
    body = {"model": server.model, "prompt": "def", "raw": True, "stream": False}
    body["options"] = {"num_predict": 1}
    httpx.post(url + "/api/generate", json=body, timeout=timeout, trust_env=False).raise_for_status()


@contextlib.contextmanager
def running(server: Server, log: Path, timeout: float = 600) -> Iterator[str]:
    """Start ``server``, wait until it is healthy (and its model created); yields its fim_load target."""
    url = f"http://127.0.0.1:{server.port}"
    env = {**os.environ, **server.env}
    print(f"# starting {server.name}: {' '.join(server.argv)} (log {log})", file=sys.stderr, flush=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            server.argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_healthy(server, proc, url, log, timeout)
        if server.modelfile is not None:
            _create(server, env, log.with_suffix(".create.log"))
            _load(server, url, timeout)
        yield server.target(url)
    finally:
        stop(proc)
        print(f"# stopped {server.name}", file=sys.stderr, flush=True)


def stop(proc: subprocess.Popen[bytes], grace: float = 15) -> None:
    """SIGTERM to the server's own process group, SIGKILL after ``grace`` s: never leave one behind."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def exit_on_sigterm() -> None:
    """A SIGTERM to the benchmark unwinds through :func:`running`, which stops the server."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
