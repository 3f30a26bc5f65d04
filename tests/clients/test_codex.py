"""Codex CLI (npm ``@openai/codex``, a native binary) headless against ``/v1/responses``.

Why: Codex CLI speaks only the OpenAI Responses API (``wire_api = "responses"``), always streaming,
with its system prompt as a ``developer`` input item, ``store: false``, ``include``,
``prompt_cache_key`` and ``client_metadata`` (what it sends is recorded from a real run).  A local
provider in ``$CODEX_HOME/config.toml`` points it at llamita; the config replaces its 20 KB base
prompt and turns off the optional tools so a turn fits the model's context on two cores.  It sends
no output limit, so the model it uses is the embedded one with a ``stop`` parameter.
Commands it runs stay in its own sandbox: writes only in the scratch directory, no network.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clients.agents import EDIT_FILE, EDIT_TASK, derived_model, require, run, scratch
from clients.install import clean_env, npm_client

pytestmark = pytest.mark.model

CONFIG = """\
model = "{model}"
model_provider = "llamita"
model_instructions_file = "{instructions}"
model_reasoning_summary = "none"
web_search = "disabled"
check_for_update_on_startup = false

[sandbox_workspace_write]
network_access = false
exclude_tmpdir_env_var = true
exclude_slash_tmp = true

[features]
goals = false
multi_agent = false
skill_search = false
apps = false
plugins = false
image_generation = false
shell_snapshot = false

[model_providers.llamita]
name = "llamita"
base_url = "{url}/v1"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
"""


# Codex fails a turn whose response is ``incomplete`` (the output limit hit), as it would on
# OpenAI's own server: the reply ends at its first line instead, with a limit far above a line.
ONE_LINE = {"stop": ["\n"], "num_predict": 512}


@pytest.fixture(scope="module")
def codex() -> Path:
    return require(lambda: npm_client("codex"))


def test_codex_exec_completes_an_edit_task(llamita_serve, tmp_path: Path, codex: Path) -> None:
    model = derived_model(llamita_serve.url, "smollm2-codex", **ONE_LINE)
    home, work = scratch(tmp_path)
    instructions = home / "instructions.md"
    instructions.write_text("You are a coding agent. Edit files to do what the user asks.\n")
    (home / "config.toml").write_text(
        CONFIG.format(model=model, instructions=instructions, url=llamita_serve.url)
    )
    env = clean_env(HOME=str(home), CODEX_HOME=str(home))
    command = [
        str(codex),
        "exec",
        "--json",
        "--skip-git-repo-check",
        "--ephemeral",
        "--sandbox",
        "workspace-write",
        f"{EDIT_TASK} The file is {EDIT_FILE}.",
    ]
    done = run(command, work, env)
    assert done.returncode == 0, done.output
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    kinds = [event.get("type") for event in events]
    assert "turn.completed" in kinds, done.output
    assert "turn.failed" not in kinds and "error" not in kinds, done.output
    usage = next(e for e in events if e.get("type") == "turn.completed")["usage"]
    assert usage["input_tokens"] > 0, done.output
