"""The official ollama-js client (npm ``ollama``, pinned by ``js/package-lock.json``) against a real server.

Why: ollama-js has its own NDJSON loop and error handling (it throws on a stream without ``done`` and
reads error bodies only when served as JSON), so driving it end to end pins what JS editors see.
``js/drive.mjs`` asserts every call and prints a JSON summary as its last line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.model

JS = Path(__file__).resolve().parent / "js"
MODEL = "smollm2:135m"
STEPS = {
    "version",
    "list",
    "show",
    "generate",
    "generate-stream",
    "ps",
    "generate-suffix",
    "generate-raw",
    "chat",
    "chat-stream",
    "chat-tools",
    "chat-tools-unsupported",
    "embed",
    "embeddings",
    "copy",
    "delete",
    "create",
    "not-found",
}


@pytest.fixture(scope="module")
def ollama_js() -> Path:
    """Install the locked client once per module (`npm ci`: exactly what package-lock.json pins)."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not on PATH (Node 20 runs the ollama-js client tests)")
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"], cwd=JS, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (JS / "node_modules" / "ollama" / "package.json").is_file()
    return JS


def test_ollama_js_drives_every_local_call(server, tiny_coder: str, ollama_js: Path) -> None:
    node = shutil.which("node")
    assert node, "node is not on PATH"
    env = {**os.environ, "LLAMITA_URL": server.url, "LLAMITA_MODEL": MODEL, "LLAMITA_FIM_MODEL": tiny_coder}
    done = subprocess.run(
        [node, "drive.mjs"], cwd=ollama_js, env=env, capture_output=True, text=True, timeout=300
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["failed"] == [], output
    assert set(summary["passed"]) == STEPS, output
    assert "invalid json" not in done.stderr, output  # ollama-js only warns on a broken NDJSON line
