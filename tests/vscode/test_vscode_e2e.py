"""The VS Code extension's protocol traffic against the real ``llamita lsp`` and a real server.

Runs ``vscode-client/scripts/e2e.mjs`` (Node): it spawns ``llamita lsp``, sends the initialize request
the extension sends (vscode-languageclient's capabilities, the extension's initializationOptions),
asks for an inline completion from a FIM model made from the generated tiny GGUF, and runs
``llamita.reviewFile`` with SmolLM2. ``make test`` installs the extension's node_modules first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import ollama
import pytest

pytestmark = [pytest.mark.model, pytest.mark.slow]

CLIENT = Path(__file__).resolve().parents[2] / "vscode-client"
FIM_MODEL = "tiny-coder"
REVIEW_MODEL = "smollm2:135m"


@pytest.fixture
def node() -> str:
    if not (CLIENT / "node_modules").is_dir():
        pytest.skip("vscode-client/node_modules is missing: run `make test` (it runs `npm ci` there)")
    found = shutil.which("node")
    assert found, "node is not on PATH (Node 20 builds the VS Code extension)"
    return found


def _llamita() -> Path:
    """The `llamita` console script of the environment running the tests."""
    return Path(sys.executable).parent / ("llamita.exe" if os.name == "nt" else "llamita")


def test_extension_protocol_gets_a_completion(server, node: str, tmp_path: Path) -> None:
    from ggufgen import write_tiny_gguf

    client = ollama.Client(host=server.url)
    try:
        gguf = write_tiny_gguf(tmp_path / "coder.gguf", fim=True)
        client.create(model=FIM_MODEL, files={"coder.gguf": client.create_blob(gguf)})
        assert "insert" in (client.show(FIM_MODEL).capabilities or [])
    finally:
        client.close()

    if not (CLIENT / "out" / "settings.js").is_file():
        subprocess.run(["npm", "run", "build"], cwd=CLIENT, check=True, timeout=300)
    env = {
        **os.environ,
        "OLLAMA_HOST": server.url,
        "LLAMITA_E2E_MODEL": FIM_MODEL,
        "LLAMITA_E2E_REVIEW_MODEL": REVIEW_MODEL,
        "LLAMITA_BIN": str(_llamita()),
        "LLAMITA_E2E_TIMEOUT_S": "240",
    }
    env.pop("LLAMITA_API_KEY", None)
    done = subprocess.run(
        [node, "scripts/e2e.mjs"], cwd=CLIENT, env=env, capture_output=True, text=True, timeout=300
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "e2e: completion: " in output
    assert "e2e: OK" in output
