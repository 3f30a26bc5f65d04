"""Running a coding agent in a test: its install (or a skip that says why), and one bounded run.

Why: every agent test does the same three things: get the client from the install cache
(``install.py``), run it headless in a scratch directory with a scratch HOME, and never leave a
process behind.  An agent starts helpers of its own (a shell, a sandbox, a local server), so each
run gets its own process group and the whole group is killed when the run ends, however it ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from clients.install import InstallError

MODEL = "smollm2:135m"
RUN_TIMEOUT = 600  # generous: 2 shared cores; no assert depends on timing
# The one-file edit task every agent gets (the answer's quality is not judged, the protocol is).
EDIT_FILE = "calc.py"
EDIT_SOURCE = "def add(a, b):\n    return a - b\n"
EDIT_TASK = "Fix the bug in calc.py: add must return a + b."


def derived_model(url: str, name: str, **parameters: object) -> str:
    """A model derived from the embedded one with Modelfile ``parameters``, made through ``/api/create``.

    For a client that sends no output limit of its own (Codex CLI), the parameters bound a turn
    the way any Ollama user would: a ``stop`` and a ``num_predict``.
    """
    body = {"model": name, "from": MODEL, "parameters": parameters, "stream": False}
    created = httpx.post(f"{url}/api/create", json=body, timeout=60)
    assert created.status_code == 200, created.text
    return name


def require(install: Callable[[], Path]) -> Path:
    """The installed client, or a skip carrying npm's / pip's error (never a silent skip)."""
    try:
        return install()
    except InstallError as e:
        pytest.skip(f"the client could not be installed: {e}")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def scratch(tmp_path: Path) -> tuple[Path, Path]:
    """A HOME and a working directory holding the file of the edit task."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (work / EDIT_FILE).write_text(EDIT_SOURCE)
    return home, work


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = RUN_TIMEOUT) -> Run:
    """Run ``command`` in its own process group with stdin closed; the group is killed afterwards."""
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env={**env, "PWD": str(cwd)},  # Bun-built agents (opencode) take their directory from $PWD
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        stdout, stderr = proc.communicate()
        pytest.fail(f"{command[0]} did not finish in {timeout}s\n{stdout}\n{stderr}")
    finally:
        _kill_group(proc.pid)
    return Run(proc.returncode, stdout, stderr)


def _kill_group(pid: int) -> None:
    """SIGKILL what is left of the run's process group (helpers an agent started)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone already
        os.killpg(pid, signal.SIGKILL)
