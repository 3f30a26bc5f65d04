"""Claude Code (npm ``@anthropic-ai/claude-code``, a native binary) headless against ``/v1/messages``.

Why: Claude Code is the Anthropic Messages client people point at local servers.  What it sends is
recorded from a real run (tests/server/api/anthropic/claude_code/ replays those bodies): always
``stream: true`` to ``/v1/messages?beta=true``, ``x-api-key``, system blocks with ``cache_control``,
``output_config``; its own ``thinking`` unless ``MAX_THINKING_TOKENS=0``.  The flags below shrink
its prompt to a few hundred tokens (``--bare``, our own ``--system-prompt``, ``--tools``) and
a model derived from the embedded one ends each reply at its first blank line, greedily, so a turn
takes seconds on two cores.  Not ``CLAUDE_CODE_MAX_OUTPUT_TOKENS`` alone: a reply cut at
``max_tokens`` makes Claude Code ask again and, after three tries, fail the turn ("response exceeded
the output token maximum"), as it would on Anthropic's server; it stays as a ceiling far above.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clients.agents import Run, derived_model, require, run, scratch
from clients.firstturn import first_turn_proxy
from clients.install import clean_env, npm_client

pytestmark = pytest.mark.model

MESSAGES = "/v1/messages"
# The one command the tool test lets Claude Code run (its permission rule names exactly this).
MADE = "made-by-tool.txt"
COMMAND = f"touch {MADE}"
# Modelfile parameters of the model Claude Code is pointed at (see the module docstring).
ONE_PARAGRAPH = {"stop": ["\n\n"], "temperature": 0, "num_predict": 512}


@pytest.fixture(scope="module")
def claude() -> Path:
    return require(lambda: npm_client("claude"))


def claude_p(claude: Path, api: str, url: str, tmp_path: Path, prompt: str, *flags: str) -> Run:
    """``claude -p <prompt>`` with a scratch HOME, no telemetry or updates, one-paragraph replies.

    ``api`` is the llamita server (the derived model is created there); ``url`` is where Claude Code
    sends its requests: the server itself, or a proxy in front of it.
    """
    home, work = scratch(tmp_path)
    model = derived_model(api, "smollm2-claude", **ONE_PARAGRAPH)
    env = clean_env(
        HOME=str(home),
        ANTHROPIC_BASE_URL=url,
        ANTHROPIC_API_KEY="llamita",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_TELEMETRY="1",
        DISABLE_AUTOUPDATER="1",
        DISABLE_ERROR_REPORTING="1",
        CLAUDE_CODE_MAX_OUTPUT_TOKENS="1024",
        MAX_THINKING_TOKENS="0",
    )
    command = [
        str(claude),
        "-p",
        prompt,
        "--model",
        model,
        "--output-format",
        "json",
        "--bare",
        "--system-prompt",
        "You are a coding assistant.",
        "--strict-mcp-config",
        "--disable-slash-commands",
        "--no-session-persistence",
        "--setting-sources",
        "",
        *flags,
    ]
    return run(command, work, env)


def result_of(done: Run) -> dict:
    """The ``--output-format json`` result: a successful turn, not an API error."""
    assert done.returncode == 0, done.output
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["type"] == "result", done.output
    assert result["is_error"] is False and result["subtype"] == "success", done.output
    return result


def test_claude_code_one_turn(llamita_serve, tmp_path: Path, claude: Path) -> None:
    done = claude_p(
        claude, llamita_serve.url, llamita_serve.url, tmp_path, "say hi", "--tools", "", "--max-turns", "1"
    )
    result = result_of(done)
    assert result["num_turns"] == 1, done.output
    assert result["usage"]["output_tokens"] > 0, done.output


def force_the_command(body: dict) -> dict:
    """The first turn only: ``tool_choice`` names Bash, and Bash's schema admits one command.

    The grammar llamita builds from the tool's JSON schema then forces the call (``tool_choice``)
    and its one harmless argument (the ``enum``), so no model-written command reaches a shell.
    """
    tools = []
    for tool in body["tools"]:
        if tool["name"] == "Bash":
            schema = {
                "type": "object",
                "properties": {"command": {"type": "string", "enum": [COMMAND]}},
                "required": ["command"],
                "additionalProperties": False,
            }
            tool = {**tool, "input_schema": schema}
        tools.append(tool)
    return {**body, "tools": tools, "tool_choice": {"type": "tool", "name": "Bash"}}


def test_claude_code_runs_a_tool_and_sends_the_result_back(
    llamita_serve, tmp_path: Path, claude: Path
) -> None:
    """Claude Code runs the Bash call the server streamed, sends its tool_result back, then finishes.

    The tiny model never calls a tool on its own, so a forwarding proxy between Claude Code and
    llamita rewrites the FIRST request (``force_the_command``: ``tool_choice`` plus Bash's schema
    narrowed to one command) and forwards every other request and every reply byte for byte: the
    tool call is still the model's output under llamita's enforced ``tool_choice``, streamed as
    Anthropic ``tool_use`` events.  Claude Code may run only that one command
    (``--allowedTools "Bash(touch ...)"``; anything else would need a prompt, and ``--permission-prompts
    none`` denies it), in the test's scratch directory.
    """
    with first_turn_proxy(llamita_serve.url, MESSAGES, force_the_command) as (url, seen):
        done = claude_p(
            claude,
            llamita_serve.url,
            url,
            tmp_path,
            "Create the marker file.",
            "--tools",
            "Bash",
            "--allowedTools",
            f"Bash({COMMAND})",
            "--permission-prompts",
            "none",
            "--max-turns",
            "3",
        )
    result = result_of(done)
    assert (tmp_path / "work" / MADE).is_file(), done.output  # Claude Code ran the tool
    bodies = seen.bodies(MESSAGES)
    assert len(bodies) >= 2, done.output
    first_call = bodies[1]["messages"][1]["content"][0]
    assert first_call["type"] == "tool_use" and first_call["name"] == "Bash", bodies[1]
    assert first_call["input"]["command"] == COMMAND, bodies[1]
    answer = bodies[1]["messages"][2]["content"][0]
    assert answer["type"] == "tool_result" and answer["tool_use_id"] == first_call["id"], bodies[1]
    assert result["num_turns"] >= 2, done.output
