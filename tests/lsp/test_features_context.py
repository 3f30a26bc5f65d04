"""End to end: repository context in the prompts ``python -m llamita.lsp`` sends to a real llamita server.

A small workspace (``pkg/util.py`` defines a function, ``main.py`` imports it, ``report.py`` is another
open file) is opened by a pytest-lsp client with the workspace folder as root; a recording proxy in front
of the real server (``tests/modelproxy.py``) shows what was sent and what the server answered. With the
embedded SmolLM2 (chat fill-in), three keystrokes on one line must send the imported definition and the
other file's snippet in a byte-identical head, which the server then serves from its KV cache. A tiny
generated GGUF with ``<|repo_name|>``/``<|file_sep|>`` in its vocabulary gets the repo-level format.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest
from lsprotocol import types
from lspsession import close
from modelproxy import ModelProxy
from pytest_lsp import LanguageClient, client_capabilities, make_test_lsp_client

UTIL = '''def apply_discount(price: float, rate: float) -> float:
    """The price after a discount of ``rate`` (0 to 1)."""
    return round(price * (1 - rate), 2)
'''
MAIN = """from pkg.util import apply_discount


def checkout(cart):
    total = sum(item.price for item in cart)
    discounted = apply_discount(total, 0.1)
    """
REPORT = """def report(cart):
    total = sum(item.price for item in cart)
    print("total", total, "discounted", apply_discount(total, 0.1))
"""
FAST = {"debounceMs": 0, "numPredict": 8, "temperature": 0, "keepAlive": "5m"}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "util.py").write_text(UTIL)
    (root / "main.py").write_text(MAIN)
    (root / "report.py").write_text(REPORT)
    return root


def _uri(path: Path) -> str:
    return path.as_uri()


@asynccontextmanager
async def editor(options: dict[str, Any], root: Path) -> AsyncIterator[LanguageClient]:
    """A language-server process with ``main.py`` and ``report.py`` of ``root`` open."""
    client = make_test_lsp_client()
    await client.start_io(sys.executable, "-m", "llamita.lsp", env=dict(os.environ))
    try:
        caps = client_capabilities("neovim@v0.11.0")
        assert caps.text_document is not None
        caps.text_document.inline_completion = types.InlineCompletionClientCapabilities()
        await client.initialize_session(
            types.InitializeParams(
                capabilities=caps,
                initialization_options=options,
                root_uri=_uri(root),
                workspace_folders=[types.WorkspaceFolder(uri=_uri(root), name=root.name)],
            )
        )
        for name in ("report.py", "main.py"):
            client.text_document_did_open(
                types.DidOpenTextDocumentParams(
                    types.TextDocumentItem(
                        uri=_uri(root / name), language_id="python", version=1, text=(root / name).read_text()
                    )
                )
            )
        yield client
    finally:
        await close(client)


def _type(client: LanguageClient, uri: str, version: int, at: types.Position, text: str) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(at, at), text=text)],
        )
    )


async def _complete(client: LanguageClient, uri: str, at: types.Position) -> str:
    result = await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=at,
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
        )
    )
    if not result or not result.items:
        return ""
    text = result.items[0].insert_text
    return text if isinstance(text, str) else text.value


@pytest.mark.model
@pytest.mark.slow
@pytest.mark.asyncio
async def test_three_keystrokes_send_the_same_context_head_and_reuse_the_kv_cache(
    proxy: ModelProxy, workspace: Path
) -> None:
    options = {**FAST, "serverUrl": proxy.url, "completionModel": "smollm2:135m", "numPredict": 16}
    main = _uri(workspace / "main.py")
    line = MAIN.count("\n")  # the cursor line: "    " after the last statement
    typed = ""
    suggestion = ""
    async with editor(options, workspace) as client:
        for version in (2, 3, 4):
            # A character the last suggestion does not start with, so the cache cannot answer
            # (typing through a shown suggestion asks the model nothing): every keystroke is a request.
            char = next(c for c in "abcdefghijklmnopqrstuvwxyz" if not suggestion.lstrip().startswith(c))
            _type(client, main, version, types.Position(line, 4 + len(typed)), char)
            typed += char
            suggestion = await _complete(client, main, types.Position(line, 4 + len(typed)))
    calls = proxy.fim_calls()
    assert len(calls) == 3
    prompts = [str(call.body["prompt"]) for call in calls]
    heads = [prompt[: prompt.index("from pkg.util import apply_discount")] for prompt in prompts]
    assert heads[0] == heads[1] == heads[2]  # byte-identical context head
    head = heads[0]
    assert "# Path: pkg/util.py\n# def apply_discount(price: float, rate: float) -> float:\n" in head
    assert '#     """The price after a discount of ``rate`` (0 to 1)."""\n' in head
    assert "# Path: report.py\n# def report(cart):\n" in head  # the other open file's snippet
    assert head.index("pkg/util.py") < head.index("report.py")  # files in path order
    for prompt, n in zip(prompts, (1, 2, 3), strict=True):
        assert prompt.split("from pkg.util import apply_discount", 1)[1].startswith("\n\n\ndef checkout")
        assert f"    {typed[:n]}<HOLE>" in prompt
    answers = [call.answer for call in calls]
    assert all(isinstance(a, dict) and a.get("done") for a in answers)
    # The server reports the shared head as cached: at least the context's tokens (SmolLM2 spends
    # well under 6 characters a token on code) and most of the first prompt.
    first_total = int(answers[0].get("prompt_eval_count", 0)) + int(answers[0].get("prompt_cache_tokens", 0))
    for answer in answers[1:]:
        cached = int(answer.get("prompt_cache_tokens", 0))
        assert cached >= len(head) // 6
        assert cached >= first_total // 2
        assert int(answer.get("prompt_eval_count", 0)) < first_total // 2


@pytest.fixture
def tiny_repo_coder(server: Any, tmp_path: Path) -> str:
    """A FIM model whose vocabulary also has the repo-level markers (Qwen2.5-Coder style)."""
    from ggufgen import write_tiny_gguf

    client = ollama.Client(host=server.url)
    try:
        path = write_tiny_gguf(tmp_path / "repo-coder.gguf", fim=True, repo_tokens=True)
        client.create(model="tiny-repo-coder", files={"repo-coder.gguf": client.create_blob(path)})
    finally:
        client.close()
    return "tiny-repo-coder"


@pytest.mark.model
def test_verbose_show_lists_the_repo_tokens(server: Any, tiny_repo_coder: str, tiny_coder: str) -> None:
    from llamita.lsp.client import ModelInfo

    def show(model: str, verbose: bool) -> dict[str, Any]:
        reply = httpx.post(f"{server.url}/api/show", json={"model": model, "verbose": verbose}, timeout=30)
        reply.raise_for_status()
        return dict(reply.json())

    verbose = show(tiny_repo_coder, True)
    assert {"<|repo_name|>", "<|file_sep|>"} <= set(verbose["model_info"]["tokenizer.ggml.tokens"])
    info = ModelInfo.from_show(tiny_repo_coder, verbose)
    assert {"<|repo_name|>", "<|file_sep|>", "<|fim_prefix|>", "<|fim_middle|>"} <= info.special_tokens
    assert "a" not in info.special_tokens  # normal tokens are not special
    assert ModelInfo.from_show(tiny_repo_coder, show(tiny_repo_coder, False)).special_tokens == frozenset()
    assert "<|repo_name|>" not in ModelInfo.from_show(tiny_coder, show(tiny_coder, True)).special_tokens


def _tiny_options(proxy: ModelProxy, model: str, *, definition_share: float) -> dict[str, object]:
    """The tiny FIM models have a 512-token context and a letter-level vocabulary: small budgets."""
    return {
        **FAST,
        "serverUrl": proxy.url,
        "completionModel": model,
        "contextTokens": 48,
        "snippetTokens": 64,
        "definitionShare": definition_share,
    }


@pytest.mark.model
@pytest.mark.asyncio
async def test_repo_level_format_for_a_model_with_repo_tokens(
    proxy: ModelProxy, tiny_repo_coder: str, workspace: Path
) -> None:
    options = _tiny_options(proxy, tiny_repo_coder, definition_share=1.0)
    main = _uri(workspace / "main.py")
    async with editor(options, workspace) as client:
        await _complete(client, main, types.Position(MAIN.count("\n"), 4))
    [call] = proxy.fim_calls()
    assert call.body["raw"] is True and "suffix" not in call.body
    prompt = str(call.body["prompt"])
    assert prompt.startswith(
        "<|repo_name|>shop\n<|file_sep|>pkg/util.py\n"
        "def apply_discount(price: float, rate: float) -> float:\n"
    )
    assert "\n<|file_sep|>main.py\n<|fim_prefix|>" in prompt and prompt.endswith("<|fim_middle|>")
    assert "<|file_sep|>" in call.body["options"]["stop"]
    assert isinstance(call.answer, dict) and call.answer.get("done") is True


@pytest.mark.model
@pytest.mark.asyncio
async def test_a_closed_file_edited_recently_still_gives_snippets(
    proxy: ModelProxy, tiny_coder: str, workspace: Path
) -> None:
    options = _tiny_options(proxy, tiny_coder, definition_share=0.0)
    report, main = _uri(workspace / "report.py"), _uri(workspace / "main.py")
    async with editor(options, workspace) as client:
        _type(client, report, 2, types.Position(0, 0), "# totals\n")
        client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(report)))
        await _complete(client, main, types.Position(MAIN.count("\n"), 4))
    [call] = proxy.fim_calls()
    assert str(call.body["prompt"]).startswith("# Path: report.py\n# # totals\n# def report(cart):\n")
