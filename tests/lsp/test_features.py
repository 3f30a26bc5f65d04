"""End to end: ``python -m llamita.lsp`` driven by pytest-lsp against a real llamita server.

The model server is the ``server`` fixture (real llamita over a store with smollm2:135m) behind a
recording proxy, so the tests can check what the language server sent. Random-weight and tiny models
write arbitrary text: the tests assert shapes, request bodies, cancellation and caching, not content.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest
from lsprotocol import types
from lspsession import close
from modelproxy import ModelProxy
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import LanguageClient, client_capabilities, make_test_lsp_client

from llamita.lsp.features import create_server

URI = "file:///work/example.py"
SOURCE = "import os\n\n\ndef add(a, b):\n    \n\nprint(add(1, 2))\n"
CURSOR = types.Position(line=4, character=4)  # the empty body of add(): a multi-line position
# Waits for things that will happen, sized for a loaded 2-core box (no test asserts a speed): a
# request the proxy holds stays held far longer than any of them takes.
WAIT = 300.0
HOLD = 900.0
FAST = {"debounceMs": 0, "numPredict": 8, "temperature": 0, "keepAlive": "5m", "snippetTokens": 0}


def _capabilities(inline: bool = True) -> types.ClientCapabilities:
    caps = client_capabilities("neovim@v0.11.0")
    if inline:
        assert caps.text_document is not None
        caps.text_document.inline_completion = types.InlineCompletionClientCapabilities()
    return caps


@asynccontextmanager
async def language_server(
    options: dict[str, Any],
    *,
    inline: bool = True,
    env: dict[str, str] | None = None,
    command: tuple[str, ...] = ("-m", "llamita.lsp"),
    on_initialized: list[types.InitializeResult] | None = None,
) -> AsyncIterator[LanguageClient]:
    """A language-server process with ``SOURCE`` open; its InitializeResult goes to ``on_initialized``."""
    client = make_test_lsp_client()
    await client.start_io(sys.executable, *command, env={**os.environ, **(env or {})})
    try:
        result = await client.initialize_session(
            types.InitializeParams(capabilities=_capabilities(inline), initialization_options=options)
        )
        if on_initialized is not None:
            on_initialized.append(result)
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                types.TextDocumentItem(uri=URI, language_id="python", version=1, text=SOURCE)
            )
        )
        yield client
    finally:
        await close(client)


def test_create_server_builds_a_new_server_on_each_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing is built at import: each call reads the environment and registers the method table."""
    monkeypatch.setenv("OLLAMA_HOST", "gpu-box:11500")
    first = create_server()
    monkeypatch.delenv("OLLAMA_HOST")
    second = create_server()
    assert first.settings.server_url == "http://gpu-box:11500"
    assert second.settings.server_url == "http://127.0.0.1:11434"
    assert first.model_client is first.completions.client  # one client, owned by the server
    features = set(second.protocol.fm.features)
    assert {
        types.INITIALIZE,
        types.TEXT_DOCUMENT_INLINE_COMPLETION,
        types.TEXT_DOCUMENT_CODE_ACTION,
    } <= features
    assert "llamita.reviewFile" in second.protocol.fm.commands


def _inline_params(position: types.Position = CURSOR) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=URI),
        position=position,
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
    )


def _assert_items_on_cursor_line(result: types.InlineCompletionList | None) -> None:
    if result is None:
        return
    for item in result.items:
        assert isinstance(item.insert_text, str) and item.insert_text.strip()
        assert item.range is not None
        assert item.range.start == CURSOR
        assert item.range.end.line == CURSOR.line


@pytest.mark.model
@pytest.mark.asyncio
async def test_inline_completion_sends_suffix_and_caches(proxy: ModelProxy, tiny_coder: str) -> None:
    options = {**FAST, "serverUrl": proxy.url, "completionModel": tiny_coder}
    async with language_server(options, env={"LLAMITA_API_KEY": "secret-key"}) as client:
        result = await client.text_document_inline_completion_async(_inline_params())
        _assert_items_on_cursor_line(result)
        fim = proxy.fim_calls()
        assert len(fim) == 1
        body, headers = fim[0].body, fim[0].headers
        assert body["model"] == tiny_coder
        assert body["prompt"] == SOURCE[: SOURCE.index("    \n") + 4]
        assert body["suffix"] == SOURCE[SOURCE.index("    \n") + 4 :]
        assert "raw" not in body
        assert body["options"]["num_predict"] == 8
        assert body["keep_alive"] == "5m"
        assert headers["authorization"] == "Bearer secret-key"
        for item in result.items if result else []:  # labels for the acceptance counters, no text
            assert item.command is not None and item.command.command == "llamita.acceptCompletion"
            assert isinstance(item.insert_text, str)
            length = len(item.insert_text)
            assert list(item.command.arguments or []) == [
                {"model": tiny_coder, "language": "python", "length": length}
            ]
        assert headers["x-llamita-session"].startswith("llamita-lsp-")

        again = await client.text_document_inline_completion_async(_inline_params())
        assert again == result
        assert len(proxy.fim_calls()) == 1  # from the cache


@pytest.mark.model
@pytest.mark.asyncio
async def test_selected_popup_item_and_other_files_shape_the_prompt(
    proxy: ModelProxy, tiny_coder: str
) -> None:
    options = {**FAST, "serverUrl": proxy.url, "completionModel": tiny_coder, "snippetTokens": 64}
    other = "file:///work/util.py"
    async with language_server(options) as client:
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                types.TextDocumentItem(
                    uri=other, language_id="python", version=1, text="def helper():\n    pass\n"
                )
            )
        )
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=other, version=2),
                content_changes=[
                    types.TextDocumentContentChangeWholeDocument(text="def helper():\n    return add(1, 2)\n")
                ],
            )
        )
        params = _inline_params()
        params.context.selected_completion_info = types.SelectedCompletionInfo(
            range=types.Range(CURSOR, CURSOR), text="return"
        )
        result = await client.text_document_inline_completion_async(params)
        [call] = proxy.fim_calls()
        # Ranked by shared identifiers (add) with the lines before the cursor; the open file's live text.
        assert call.body["prompt"].startswith(
            "# Path: /work/util.py\n# def helper():\n#     return add(1, 2)\n"
        )
        assert call.body["prompt"].endswith("def add(a, b):\n    return")
        for item in result.items if result else []:
            assert isinstance(item.insert_text, str) and item.insert_text.startswith("return")
            assert item.range is not None and item.range.start == CURSOR


@pytest.mark.model
@pytest.mark.asyncio
async def test_raw_fim_template_when_model_lacks_insert(proxy: ModelProxy) -> None:
    # smollm2 matches no FIM family, so it gets the chat fill-in unless a raw template is forced.
    options = {**FAST, "serverUrl": proxy.url, "completionModel": "smollm2:135m", "fimTemplate": "starcoder2"}
    async with language_server(options) as client:
        result = await client.text_document_inline_completion_async(_inline_params())
        _assert_items_on_cursor_line(result)
        [call] = proxy.fim_calls()
        assert call.body["raw"] is True
        assert "suffix" not in call.body
        assert call.body["prompt"].startswith(
            "<fim_prefix>import os"
        )  # StarCoder tokens: the fallback family
        assert call.body["prompt"].endswith("<fim_middle>")
        assert "<fim_prefix>" in call.body["options"]["stop"]


@pytest.mark.model
@pytest.mark.asyncio
async def test_chat_fill_in_for_a_model_without_fim_tokens(proxy: ModelProxy) -> None:
    options = {**FAST, "serverUrl": proxy.url, "completionModel": "smollm2:135m", "numPredict": 32}
    async with language_server(options) as client:
        result = await client.text_document_inline_completion_async(_inline_params())
        _assert_items_on_cursor_line(result)
        [call] = proxy.fim_calls()
        assert "raw" not in call.body and "suffix" not in call.body  # the server applies the chat template
        assert (
            "```python\nimport os\n\n\ndef add(a, b):\n    <HOLE>\n\nprint(add(1, 2))\n"
            in call.body["prompt"]
        )
        assert "\n```" in call.body["options"]["stop"]
        assert call.body["options"]["temperature"] == 0


@pytest.mark.model
@pytest.mark.asyncio
async def test_cancel_request_closes_the_http_call(proxy: ModelProxy, tiny_coder: str) -> None:
    options = {**FAST, "serverUrl": proxy.url, "completionModel": tiny_coder}
    async with language_server(options) as client:
        proxy.hold = HOLD
        pending = asyncio.ensure_future(
            client.protocol.send_request_async(
                types.TEXT_DOCUMENT_INLINE_COMPLETION, _inline_params(), msg_id="to-cancel"
            )
        )
        assert await asyncio.to_thread(proxy.wait_for, lambda: proxy.fim_calls() != [], WAIT)
        started = time.monotonic()
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="to-cancel"))
        with pytest.raises(JsonRpcRequestCancelled):
            await asyncio.wait_for(pending, WAIT)
        assert await asyncio.to_thread(proxy.wait_for, lambda: proxy.fim_calls()[-1].disconnected, WAIT)
        # Closed by the cancel, not by the proxy's hold running out (far longer than any load delay).
        assert time.monotonic() - started < HOLD


@pytest.mark.model
@pytest.mark.asyncio
async def test_newer_request_supersedes_the_older_one(proxy: ModelProxy, tiny_coder: str) -> None:
    options = {**FAST, "serverUrl": proxy.url, "completionModel": tiny_coder}
    async with language_server(options) as client:
        proxy.hold = HOLD
        first = asyncio.ensure_future(client.text_document_inline_completion_async(_inline_params()))
        assert await asyncio.to_thread(proxy.wait_for, lambda: proxy.fim_calls() != [], WAIT)
        proxy.hold = 0.0
        second = await client.text_document_inline_completion_async(_inline_params(types.Position(4, 4)))
        # The same context: the superseded request answers None instead of an error.
        assert await asyncio.wait_for(first, WAIT) is None
        _assert_items_on_cursor_line(second)
        generate = proxy.fim_calls()
        assert generate[0].disconnected and not generate[-1].disconnected


@pytest.mark.model
@pytest.mark.asyncio
async def test_completion_fallback_without_inline_support(proxy: ModelProxy, tiny_coder: str) -> None:
    options = {**FAST, "serverUrl": proxy.url, "completionModel": tiny_coder}
    async with language_server(options, inline=False) as client:
        result = await client.text_document_completion_async(
            types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=URI), position=CURSOR)
        )
        assert proxy.fim_calls()
        if result is not None:
            assert isinstance(result, types.CompletionList) and result.is_incomplete
            [item] = result.items
            assert isinstance(item.text_edit, types.TextEdit)
            assert item.text_edit.range.start == CURSOR and item.text_edit.new_text.strip()


@pytest.mark.model
@pytest.mark.asyncio
async def test_review_publishes_anchored_diagnostics(proxy: ModelProxy) -> None:
    options = {
        "serverUrl": proxy.url,
        "completionModel": "smollm2:135m",
        "reviewModel": "smollm2:135m",
        "reviewNumPredict": 48,
    }
    async with language_server(options) as client:
        client.text_document_did_save(types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(URI)))
        await asyncio.wait_for(client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS), WAIT)
        [chat] = proxy.calls("/api/chat")
        assert chat.body["format"]["properties"]["findings"]["type"] == "array"
        assert "\n4 | def add(a, b):\n" in chat.body["messages"][0]["content"]
        lines = SOURCE.split("\n")
        for diagnostic in client.diagnostics[URI]:
            assert diagnostic.source == "llamita"
            start, end = diagnostic.range.start, diagnostic.range.end
            assert (start.line, start.character) <= (end.line, end.character) and end.line < len(lines)
            assert start.character <= len(lines[start.line]) and end.character <= len(lines[end.line])
            assert diagnostic.data["quote"]

        # The command reviews the same content again: answered from the review cache.
        answer = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="llamita.reviewFile", arguments=[URI])
        )
        assert answer["uri"] == URI and answer["diagnostics"] == len(client.diagnostics[URI])
        assert len(proxy.calls("/api/chat")) == 1


def _change(
    client: LanguageClient, version: int, start: tuple[int, int], end: tuple[int, int], text: str
) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(types.Position(*start), types.Position(*end)), text=text
                )
            ],
        )
    )


async def _next_diagnostics(client: LanguageClient) -> list[types.Diagnostic]:
    await asyncio.wait_for(client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS), WAIT)
    return list(client.diagnostics[URI])


@pytest.mark.asyncio
async def test_review_findings_follow_edits_and_offer_their_fix(proxy: ModelProxy) -> None:
    """A scripted review answer (known findings) through the real language server: anchor, fix, edits."""
    findings = [
        {
            "line": 9,
            "severity": "error",
            "message": "wrong numbers",
            "quote": "add(1, 2)",
            "suggestion": "add(2, 3)",
        },
        {"line": 2, "severity": "warning", "message": "invented", "quote": "missing()", "suggestion": ""},
    ]
    content = json.dumps({"findings": findings})
    proxy.scripted["/api/chat"] = {"message": {"role": "assistant", "content": content}, "done": True}
    async with language_server({"serverUrl": proxy.url, "enable": False}) as client:
        answer = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="llamita.reviewFile", arguments=[URI])
        )
        assert answer == {"uri": URI, "diagnostics": 1}
        [diagnostic] = client.diagnostics[URI]
        assert diagnostic.range == types.Range(types.Position(6, 6), types.Position(6, 15))
        assert (diagnostic.severity, diagnostic.source) == (types.DiagnosticSeverity.Error, "llamita")

        actions = await client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(URI),
                range=diagnostic.range,
                context=types.CodeActionContext(diagnostics=[diagnostic]),
            )
        )
        assert actions is not None
        [action] = actions
        assert isinstance(action, types.CodeAction) and action.edit is not None and action.edit.changes
        assert list(action.edit.changes[URI]) == [
            types.TextEdit(range=diagnostic.range, new_text="add(2, 3)")
        ]

        _change(client, 2, (0, 0), (0, 0), "# header\n")  # the finding moves down with its code
        [moved] = await _next_diagnostics(client)
        assert moved.range == types.Range(types.Position(7, 6), types.Position(7, 15))
        _change(client, 3, (7, 6), (7, 15), "add(5, 6)")  # the quoted code is gone: stale, cleared
        assert await _next_diagnostics(client) == []
        assert not [r for r in proxy.records if r.path == "/api/generate"]  # completions disabled: no warm-up


@pytest.mark.asyncio
async def test_code_action_applies_a_replacement_still_in_place() -> None:
    with socketless_port() as port:
        options = {"serverUrl": f"http://127.0.0.1:{port}", "reviewOnSave": False}
        async with language_server(options) as client:
            actions = await _code_actions(client)
    assert actions is not None and len(actions) == 1
    [action] = actions
    assert isinstance(action, types.CodeAction) and action.edit is not None
    assert action.edit.changes is not None
    assert list(action.edit.changes[URI]) == [types.TextEdit(range=QUOTE_RANGE, new_text="add(1, 3)")]


QUOTE_RANGE = types.Range(types.Position(6, 6), types.Position(6, 15))


async def _code_actions(client: LanguageClient) -> Any:
    diagnostic = types.Diagnostic(
        range=QUOTE_RANGE,
        message="m",
        source="llamita",
        data={"quote": "add(1, 2)", "replacement": "add(1, 3)"},
    )
    stale = types.Diagnostic(range=QUOTE_RANGE, message="m", source="llamita", data={"quote": "other"})
    return await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(URI),
            range=QUOTE_RANGE,
            context=types.CodeActionContext(diagnostics=[diagnostic, stale]),
        )
    )


@pytest.mark.asyncio
async def test_unreachable_server_warns_once_and_answers_none() -> None:
    with socketless_port() as port:
        options = {**FAST, "serverUrl": f"http://127.0.0.1:{port}"}
        async with language_server(options) as client:
            for _ in range(3):
                assert await client.text_document_inline_completion_async(_inline_params()) is None
            warnings = [m for m in client.messages if "no model server answers" in m.message]
            assert len(warnings) == 1
            assert warnings[0].type == types.MessageType.Warning


@pytest.mark.asyncio
async def test_llamita_lsp_subcommand_advertises_the_features() -> None:
    with socketless_port() as port:
        options = {"serverUrl": f"http://127.0.0.1:{port}"}
        results: list[types.InitializeResult] = []
        command = ("-m", "llamita.server.cli", "lsp")
        async with language_server(options, command=command, on_initialized=results):
            capabilities = results[0].capabilities
    assert capabilities.inline_completion_provider is not None
    assert capabilities.completion_provider is not None
    assert capabilities.code_action_provider is not None
    assert sorted(capabilities.execute_command_provider.commands) == [
        "llamita.acceptCompletion",
        "llamita.reviewFile",
    ]
    assert capabilities.text_document_sync.save


@contextmanager
def socketless_port() -> Iterator[int]:
    """A loopback port nobody listens on."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    yield port
