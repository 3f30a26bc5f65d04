"""Repository rules in the prompts actually sent: review diagnostics, ``llamita review`` and ``llamita pr``.

Each path runs for real (the language server over stdio, the two commands as subprocesses) against a
recording proxy in front of the real llamita server, in a real git repository with ``AGENTS.md``, with
``.llamita/rules.md`` next to it (which wins), with a huge ``AGENTS.md`` (cut to the budget, marker
present), and with neither (no system message). The ``agents`` case goes through to SmolLM2; the others
get a scripted answer from the proxy (the prompt, not the model's answer, is under test).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import git
import pytest
from gitrepo import close_all, commit, make_repo, write
from lsprotocol import types
from lspsession import close
from modelproxy import ModelProxy
from pytest_lsp import client_capabilities, make_test_lsp_client

from llamita.lsp import rules
from llamita.lsp.tokens import estimate_tokens

pytestmark = pytest.mark.model

KINDS = ("agents", "precedence", "huge", "none")
CODE = "def ratio(a, b):\n    return a / b\n\n\nprint(ratio(1, 0))\n"
HUGE_LINES = [f"rule {i:06d}: prefer small functions with one job\n" for i in range(200_000)]  # ~9 MB
REVIEW_ANSWER = {"findings": []}
PR_ANSWER = {
    "title": "Add ratio",
    "type": "feature",
    "summary": ["adds ratio"],
    "walkthrough": [],
    "review_order": [],
}


@pytest.fixture(autouse=True)
def _close_repos():
    yield
    close_all()


def rules_repo(root: Path, kind: str) -> git.Repo:
    """main with a README, then a branch ``feature`` whose change (``calc.py``) is also staged."""
    repo = make_repo(root)
    write(repo, "README.md", "# calc\n")
    write(repo, "pkg/AGENTS.md", "NESTED-RULE: never read this one\n")
    if kind in ("agents", "precedence"):
        write(repo, "AGENTS.md", "# Conventions\n\nAGENTS-RULE-7: divisions must check for zero.\n")
    if kind == "precedence":
        write(repo, ".llamita/rules.md", "LLAMITA-RULE-9: the .llamita file wins.\n")
    if kind == "huge":
        write(repo, "AGENTS.md", "".join(HUGE_LINES))
    commit(repo, "init")
    repo.git.checkout("-b", "feature")
    write(repo, "calc.py", CODE)
    repo.git.add("calc.py")
    return repo


def script(proxy: ModelProxy, kind: str, answer: dict[str, Any]) -> None:
    if kind != "agents":
        content = json.dumps(answer)
        proxy.scripted["/api/chat"] = {"message": {"role": "assistant", "content": content}, "done": True}


def check(body: dict[str, Any], kind: str, prompt_tokens: int) -> None:
    """The rules section of one chat body sent to the model, as ``kind`` wants it."""
    messages = body["messages"]
    assert messages[-1]["role"] == "user" and "NESTED-RULE" not in json.dumps(messages)
    if kind == "none":
        assert [m["role"] for m in messages] == ["user"]
        return
    system, user = messages
    assert system["role"] == "system" and user["role"] == "user"
    text = system["content"]
    marker = rules.CUT_MARKER.format(source="AGENTS.md")
    if kind == "agents":
        assert "`AGENTS.md`" in text and "AGENTS-RULE-7" in text and marker not in text
    elif kind == "precedence":
        assert "`.llamita/rules.md`" in text and "LLAMITA-RULE-9" in text and "AGENTS-RULE-7" not in text
    else:
        assert text.endswith("\n" + marker) and HUGE_LINES[0] in text and HUGE_LINES[-1] not in text
        assert estimate_tokens(text) <= rules.budget_for(prompt_tokens) + 1
        kept = text.split("\n\n", 1)[1].rsplit("\n", 1)[0] + "\n"
        assert kept == "".join(HUGE_LINES[: kept.count("\n")])  # whole lines from the top


def run_cli(proxy: ModelProxy, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OLLAMA_HOST": proxy.url, "XDG_CONFIG_HOME": str(cwd / ".no-config")}
    command = [sys.executable, "-m", "llamita.server.cli", *args, "--model", "smollm2:135m"]
    return subprocess.run(command, cwd=cwd / "pkg", env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("kind", KINDS)
def test_llamita_review_sends_the_rules(proxy: ModelProxy, tmp_path: Path, kind: str) -> None:
    rules_repo(tmp_path, kind)
    script(proxy, kind, REVIEW_ANSWER)
    out = run_cli(proxy, tmp_path, "review", "--staged")  # from a subdirectory: the root's file counts
    assert out.returncode == 0, out.stderr
    assert "finding(s) in 1 file(s)" in out.stdout
    chats = proxy.calls("/api/chat")
    assert chats
    for chat in chats:
        check(chat.body, kind, 3000)


@pytest.mark.parametrize("kind", KINDS)
def test_llamita_pr_sends_the_rules(proxy: ModelProxy, tmp_path: Path, kind: str) -> None:
    commit(rules_repo(tmp_path, kind), "Add ratio")
    script(proxy, kind, PR_ANSWER)
    out = run_cli(proxy, tmp_path, "pr", "--base", "main", "--format", "json", "--num-ctx", "2048")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["title"]
    chats = proxy.calls("/api/chat")
    assert chats
    for chat in chats:
        check(chat.body, kind, 2048 - 2048 // 3)


async def review_in_editor(proxy: ModelProxy, path: Path) -> None:
    """``python -m llamita.lsp`` with ``path`` open, reviewed through ``llamita.reviewFile``."""
    client = make_test_lsp_client()
    await client.start_io(sys.executable, "-m", "llamita.lsp", env=dict(os.environ))
    try:
        options = {"serverUrl": proxy.url, "enable": False, "reviewModel": "smollm2:135m"}
        options |= {"reviewNumPredict": 48, "reviewChunkTokens": 2000, "reviewOnSave": False}
        await client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities("neovim@v0.11.0"), initialization_options=options
            )
        )
        uri = path.as_uri()
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "python", 1, path.read_text()))
        )
        answer = await asyncio.wait_for(
            client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="llamita.reviewFile", arguments=[uri])
            ),
            300,
        )
        assert answer["uri"] == uri
    finally:
        await close(client)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", KINDS)
async def test_review_diagnostics_send_the_rules(proxy: ModelProxy, tmp_path: Path, kind: str) -> None:
    write(rules_repo(tmp_path, kind), "pkg/deep/calc.py", CODE)
    script(proxy, kind, REVIEW_ANSWER)
    await review_in_editor(proxy, tmp_path / "pkg" / "deep" / "calc.py")
    [chat] = proxy.calls("/api/chat")
    check(chat.body, kind, 2000)
    assert "def ratio(a, b):" in chat.body["messages"][-1]["content"]
