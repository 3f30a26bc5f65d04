"""Installs the coding-agent clients the tests run, once, into gitignored caches.

Why: Claude Code, Codex CLI and opencode are npm packages with a native binary each (hundreds of MB)
and aider pins dozens of PyPI packages of its own, so none goes into the project's venv and none is
reinstalled per test.  Each client has its own folder under ``tests/clients/``: the npm ones a
``package.json`` + ``package-lock.json`` (``npm ci`` into ``node_modules/``), aider a
``requirements.txt`` (its own ``.venv/``).  A stamp file holding the lock's hash marks a finished
install, so ``make clients`` (run by ``make test``) installs them and the tests' fixtures find them
ready; a fixture installs what is missing itself.  An install that fails raises
:class:`InstallError` with the tool's own output, which the fixture turns into a skip reason.

``python tests/clients/install.py`` installs every client and reports each result; it exits 0 even
when one fails, so the tests show the reason as a skip.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

CLIENTS = Path(__file__).resolve().parent
STAMP = ".llamita-installed"
INSTALL_TIMEOUT = 900
# npm client folder -> its entry point, relative to the folder.
NPM_CLIENTS = {
    "claude": Path("node_modules/.bin/claude"),
    "codex": Path("node_modules/.bin/codex"),
    "opencode": Path("node_modules/opencode-linux-x64/bin/opencode"),
}
AIDER = CLIENTS / "aider"


class InstallError(RuntimeError):
    """A client could not be installed; the message carries npm's or pip's output."""


def _digest(*files: Path) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()


def _run(command: list[str], cwd: Path, what: str) -> None:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise InstallError(f"{what}: {' '.join(command)} failed: {e}") from e
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        if len(output) > 3000:  # npm puts the reason first and its usage text after it
            output = f"{output[:2000]}\n...\n{output[-1000:]}"
        raise InstallError(f"{what}: {' '.join(command)} exited {done.returncode}:\n{output}")


def npm_client(name: str) -> Path:
    """``npm ci`` in ``tests/clients/<name>`` unless its lockfile is already installed; the entry point."""
    folder = CLIENTS / name
    entry = folder / NPM_CLIENTS[name]
    stamp = folder / "node_modules" / STAMP
    digest = _digest(folder / "package-lock.json")
    if entry.exists() and stamp.is_file() and stamp.read_text() == digest:
        return entry
    npm = shutil.which("npm")
    if npm is None:
        raise InstallError(f"{name}: npm is not on PATH (Node.js >= 20 installs the client)")
    _run([npm, "ci", "--no-audit", "--no-fund"], folder, name)
    if not entry.exists():
        raise InstallError(f"{name}: npm ci finished but {entry} is missing")
    stamp.write_text(digest)
    return entry


def aider() -> Path:
    """aider-chat in its own venv (``tests/clients/aider/.venv``): it pins many packages of its own."""
    venv = AIDER / ".venv"
    entry = venv / "bin" / "aider"
    stamp = venv / STAMP
    digest = _digest(AIDER / "requirements.txt")
    if entry.exists() and stamp.is_file() and stamp.read_text() == digest:
        return entry
    base = getattr(sys, "_base_executable", None) or sys.executable
    _run([base, "-m", "venv", "--clear", str(venv)], AIDER, "aider")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run([*pip, "-r", "requirements.txt"], AIDER, "aider")
    if not entry.exists():
        raise InstallError(f"aider: pip finished but {entry} is missing")
    stamp.write_text(digest)
    return entry


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without the developer's own client settings and keys."""
    prefixes = ("ANTHROPIC_", "CLAUDE_", "OPENAI_", "CODEX_", "OPENCODE_", "OLLAMA_", "AIDER_", "LITELLM_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(extra)
    return env


def main() -> int:
    installers = [*((name, lambda name=name: npm_client(name)) for name in NPM_CLIENTS), ("aider", aider)]
    for name, install in installers:
        try:
            print(f"{name}: {install()}", flush=True)
        except InstallError as e:
            print(f"{name}: NOT INSTALLED (its tests will skip): {e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
