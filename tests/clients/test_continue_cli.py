"""The Continue CLI (npm ``@continuedev/cli``, pinned by ``cn/package-lock.json``) run headless.

Why: ``cn -p`` is a real agent on the OpenAI endpoint through Continue's openai-adapters: it
sends a long system prompt, its built-in tools, ``stream_options.include_usage`` and an empty
bearer key, and parses the SSE stream itself (clients.md §3.4, §12.2). It runs fully offline with
a local ``config.yaml``; ``defaultCompletionOptions`` keeps each reply to a few tokens.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.model

CN = Path(__file__).resolve().parent / "cn"
MODEL = "smollm2:135m"
RUN_TIMEOUT = 90
# cn's built-in tools in headless mode (what it sends by default, clients.md §3.4).
CN_TOOLS = (
    "Read",
    "List",
    "Bash",
    "Fetch",
    "Checklist",
    "CheckBackgroundJob",
    "AskQuestion",
    "Exit",
    "Skills",
)
# Bash is allowed without asking in headless mode: never let a model's tool call reach a shell.
NO_SHELL = ("--exclude", "Bash")


@pytest.fixture(scope="module")
def continue_cli() -> Path:
    """Install the locked CLI once per module (`npm ci`: exactly what package-lock.json pins)."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not on PATH (Node 20 runs the Continue CLI test)")
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"], cwd=CN, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    script = CN / "node_modules" / "@continuedev" / "cli" / "dist" / "cn.js"
    assert script.is_file()
    return script


def write_config(directory: Path, api_base: str, model: str) -> Path:
    """The documented local config: one ollama model for chat, replies bounded to 16 tokens."""
    config = directory / "config.yaml"
    config.write_text(
        "name: llamita-test\n"
        "version: 0.0.1\n"
        "schema: v1\n"
        "models:\n"
        "  - name: local\n"
        "    provider: ollama\n"
        f"    model: {model}\n"
        f"    apiBase: {api_base}\n"
        "    roles: [chat]\n"
        "    defaultCompletionOptions:\n"
        "      maxTokens: 16\n"
        "      temperature: 0\n"
    )
    return config


def run_cn(
    script: Path, tmp_path: Path, api_base: str, model: str, *flags: str
) -> subprocess.CompletedProcess:
    """``HOME=<tmp> node cn.js -p "say hi" --config ./config.yaml`` from a scratch directory."""
    node = shutil.which("node")
    assert node, "node is not on PATH"
    home = tmp_path / "home"
    home.mkdir()
    write_config(tmp_path, api_base, model)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("CONTINUE_", "OTEL_"))}
    env = {
        **inherited,
        "HOME": str(home),
        "CONTINUE_CLI_ENABLE_TELEMETRY": "0",
        "CONTINUE_METRICS_ENABLED": "0",
    }
    command = [node, str(script), "-p", "say hi", "--config", "./config.yaml", *flags]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)


def assert_replied(done: subprocess.CompletedProcess) -> None:
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert done.stdout.strip(), output
    assert '"status":"error"' not in output, output


def test_cn_headless_on_the_default_model(server, tmp_path: Path, continue_cli: Path) -> None:
    """cn always sends its tools: the default model's template has a tools section (as Ollama's)."""
    done = run_cn(continue_cli, tmp_path, server.url, MODEL, *NO_SHELL)
    assert "does not support tools" not in done.stderr, done.stderr
    assert_replied(done)


def test_cn_headless_without_tools_on_the_default_model(server, tmp_path: Path, continue_cli: Path) -> None:
    excluded = [flag for tool in CN_TOOLS for flag in ("--exclude", tool)]
    assert_replied(run_cn(continue_cli, tmp_path, server.url, MODEL, *excluded))
