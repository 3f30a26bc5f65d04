"""aider (PyPI ``aider-chat``, in its own venv) with an ``ollama_chat/`` model against ``/api/chat``.

Why: aider reaches Ollama through litellm: ``/api/show`` for the model's context, then
``/api/chat`` with its own ``options.num_ctx`` and ``temperature: 0``, streamed, and parses the
"whole file" edit format from the reply.  A model-settings file gives it ``max_tokens`` (litellm
sends it as ``num_predict``) so a turn is bounded.  Offline: ``LITELLM_LOCAL_MODEL_COST_MAP`` keeps
litellm on its bundled model list, and aider's own copy of that list (which it would download into
``~/.aider/caches``) is seeded from the same bundled file; no git, no analytics, no update check.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from clients.agents import EDIT_FILE, EDIT_TASK, MODEL, require, run, scratch
from clients.install import aider as install_aider
from clients.install import clean_env

pytestmark = pytest.mark.model

SETTINGS = f"- name: ollama_chat/{MODEL}\n  extra_params:\n    max_tokens: 48\n"
MODEL_LIST = "model_prices_and_context_window.json"
BUNDLED_LIST = "lib/python3*/site-packages/litellm/model_prices_and_context_window_backup.json"
# What aider prints once it has read a whole reply: its token report, or, when the reply stopped
# at max_tokens, its notice that the model hit the limit.  Either means the stream was parsed.
REPLY_READ = ("Tokens:", "has hit a token limit")


@pytest.fixture(scope="module")
def aider() -> Path:
    return require(install_aider)


def test_aider_completes_an_edit_task(llamita_serve, tmp_path: Path, aider: Path) -> None:
    home, work = scratch(tmp_path)
    settings = home / "model-settings.yml"
    settings.write_text(SETTINGS)
    bundled = next(aider.parent.parent.glob(BUNDLED_LIST))
    caches = home / ".aider" / "caches"
    caches.mkdir(parents=True)
    shutil.copy(bundled, caches / MODEL_LIST)
    env = clean_env(HOME=str(home), OLLAMA_API_BASE=llamita_serve.url, LITELLM_LOCAL_MODEL_COST_MAP="True")
    command = [
        str(aider),
        "--model",
        f"ollama_chat/{MODEL}",
        "--model-settings-file",
        str(settings),
        "--yes-always",
        "--no-git",
        "--no-auto-commits",
        "--no-show-model-warnings",
        "--no-check-update",
        "--no-analytics",
        "--no-show-release-notes",
        "--no-pretty",
        "--message",
        EDIT_TASK,
        EDIT_FILE,
    ]
    done = run(command, work, env)
    assert done.returncode == 0, done.output
    assert f"Added {EDIT_FILE} to the chat" in done.stdout, done.output
    assert any(sign in done.stdout for sign in REPLY_READ), done.output
    for failure in ("litellm.APIConnectionError", "OllamaException", "Traceback", "HTTPSConnectionPool"):
        assert failure not in done.output, done.output
