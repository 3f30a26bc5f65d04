"""opencode (npm ``opencode-linux-x64``: what ``opencode-ai`` runs) headless on ``/v1/chat/completions``.

Why: opencode is an agent on the OpenAI chat API through the AI SDK's openai-compatible provider:
a title request without tools, then the agent's turn with its tools, ``tool_choice: "auto"``,
``max_tokens`` and ``stream_options.include_usage``, both streamed.  A project ``opencode.json``
points it at llamita; it replaces the 10 KB agent prompt, keeps only the file tools (no shell, no
web) and bounds each reply with the model's ``limit.output``.  ``--pure`` and the ``OPENCODE_*``
switches keep it offline (no plugins, no models.dev fetch, no LSP downloads, no updates).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clients.agents import EDIT_TASK, MODEL, require, run, scratch
from clients.install import clean_env, npm_client

pytestmark = pytest.mark.model

# No external plugins; JSON events on stdout; its warnings on stderr for a failure's report.
RUN_FLAGS = ("--pure", "--format", "json", "--print-logs", "--log-level", "WARN")
OFF = ("bash", "webfetch", "task", "todowrite", "skill", "glob", "grep")


def project_config(url: str) -> dict:
    return {
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            "llamita": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "llamita",
                "options": {"baseURL": f"{url}/v1"},
                "models": {MODEL: {"name": "smollm2", "limit": {"context": 8192, "output": 64}}},
            }
        },
        "model": f"llamita/{MODEL}",
        "small_model": f"llamita/{MODEL}",
        "autoupdate": False,
        "share": "disabled",
        "lsp": False,
        "formatter": False,
        "tools": dict.fromkeys(OFF, False),
        "agent": {"build": {"prompt": "You are a coding agent. Edit files to do what the user asks."}},
    }


@pytest.fixture(scope="module")
def opencode() -> Path:
    return require(lambda: npm_client("opencode"))


def test_opencode_run_completes_an_edit_task(llamita_serve, tmp_path: Path, opencode: Path) -> None:
    home, work = scratch(tmp_path)
    (work / "opencode.json").write_text(json.dumps(project_config(llamita_serve.url)))
    env = clean_env(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        XDG_CACHE_HOME=str(home / ".cache"),
        OPENCODE_DISABLE_MODELS_FETCH="1",
        OPENCODE_DISABLE_AUTOUPDATE="1",
        OPENCODE_DISABLE_LSP_DOWNLOAD="1",
        OPENCODE_DISABLE_DEFAULT_PLUGINS="1",
    )
    command = [
        str(opencode),
        "run",
        "--pure",
        "--format",
        "json",
        "--print-logs",
        "--log-level",
        "WARN",
        EDIT_TASK,
    ]
    done = run(command, work, env)
    assert done.returncode == 0, done.output
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    kinds = [event["type"] for event in events]
    assert "error" not in kinds, done.output
    finished = [e["part"] for e in events if e["type"] == "step_finish"]
    assert finished and finished[-1]["tokens"]["output"] > 0, done.output
