"""Acceptance counters end to end: ``python -m llamita.lsp`` gets Copilot's shown / partially accepted
notifications and the item's accept command, and the counts reach a real llamita server's ``/metrics``.

The language server posts through the recording proxy of ``tests/modelproxy.py``, so the tests see
every body it sent (numbers and labels, never code text). A plain-Ollama-like target (404 for the
route) turns posting off after one try, quietly. The server here has no model loaded and completions
are off (``enable: false``): only the counters are under test; ``test_features.py`` covers the items.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
from lsprotocol import types
from modelproxy import ModelProxy, running_proxy
from prometheus_client.parser import text_string_to_metric_families
from pytest_lsp import LanguageClient, client_capabilities, make_test_lsp_client
from serving import serve_app
from starlette.applications import Starlette

from llamita.lsp.completion.acceptance import (
    ACCEPT_COMMAND,
    DID_PARTIALLY_ACCEPT,
    DID_SHOW,
    command_arguments,
)
from llamita.lsp.features import create_server

CODE = "return secret_sauce(a, b)  # do not leak"
EVENTS = "/api/llamita/completion-events"
NAMES = {
    "shown": "llamita_completions_shown_total",
    "accepted": "llamita_completions_accepted_total",
    "partially_accepted": "llamita_completions_partially_accepted_total",
    "accepted_chars": "llamita_completions_accepted_chars_total",
}


def _item(model: str, language: str, text: str = CODE) -> dict[str, Any]:
    """An InlineCompletionItem as the client echoes it: text, range and the server's command."""
    position = {"line": 4, "character": 4}
    return {
        "insertText": text,
        "range": {"start": position, "end": position},
        "command": {
            "title": "",
            "command": ACCEPT_COMMAND,
            "arguments": command_arguments(model, language, text),
        },
    }


@asynccontextmanager
async def language_server(options: dict[str, Any], env: dict[str, str]) -> AsyncIterator[LanguageClient]:
    client = make_test_lsp_client()
    await client.start_io(sys.executable, "-m", "llamita.lsp", env={**os.environ, **env})
    try:
        await client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities("neovim@v0.11.0"), initialization_options=options
            )
        )
        yield client
    finally:
        process = client._server
        if process is not None and process.returncode is None:
            process.kill()
        await client.stop()


async def _accept(client: LanguageClient, item: dict[str, Any]) -> None:
    """What the client does on Tab: run the item's command through ``workspace/executeCommand``."""
    command = item["command"]
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=command["command"], arguments=command["arguments"])
    )


def _metrics(url: str, model: str, language: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics").text
    labels = {"model": model, "language": language}
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return {field: samples.get((name, frozenset(labels.items())), 0.0) for field, name in NAMES.items()}


@contextmanager
def plain_ollama() -> Iterator[ModelProxy]:
    """A recording proxy in front of a server that knows no llamita route (404 for all)."""
    with serve_app(Starlette()) as upstream, running_proxy(upstream) as proxy:
        yield proxy


@pytest.mark.asyncio
async def test_counters_reach_metrics_without_code_text(empty_server: Any) -> None:
    with running_proxy(empty_server.url) as proxy:
        options = {"serverUrl": proxy.url, "enable": False}
        async with language_server(options, {"LLAMITA_API_KEY": "acceptance-key"}) as client:
            python, go = _item("coder:1.5b", "python"), _item("coder:1.5b", "go", "x := 1")
            client.protocol.notify(DID_SHOW, {"item": python})
            client.protocol.notify(DID_SHOW, {"item": python})
            client.protocol.notify(DID_SHOW, {"item": go})
            client.protocol.notify(DID_PARTIALLY_ACCEPT, {"item": python, "acceptedLength": 6})
            await _accept(client, python)
            await _accept(client, go)
            assert proxy.calls(EVENTS) == []  # batched: nothing on the request path
            await asyncio.wait_for(client.shutdown_session(), 10)  # the last batch goes at shutdown
        assert _metrics(empty_server.url, "coder:1.5b", "python") == {
            "shown": 2,
            "accepted": 1,
            "partially_accepted": 1,
            "accepted_chars": len(CODE) + 6,
        }
        assert _metrics(empty_server.url, "coder:1.5b", "go") == {
            "shown": 1,
            "accepted": 1,
            "partially_accepted": 0,
            "accepted_chars": len("x := 1"),
        }
        posted = proxy.calls(EVENTS)
        assert len(posted) == 2  # one delta per (model, language)
        for record in posted:
            assert set(record.body) == {"model", "language", *NAMES}
            assert "secret_sauce" not in str(record.body) and "x := 1" not in str(record.body)
            assert record.headers["authorization"] == "Bearer acceptance-key"


@pytest.mark.asyncio
async def test_deltas_are_posted_on_a_timer_and_not_twice(empty_server: Any) -> None:
    with running_proxy(empty_server.url) as proxy:
        options = {"serverUrl": proxy.url, "enable": False, "acceptanceIntervalSeconds": 0.1}
        async with language_server(options, {}) as client:
            client.protocol.notify(DID_SHOW, {"item": _item("m", "rust")})
            assert await asyncio.to_thread(proxy.wait_for, lambda: len(proxy.calls(EVENTS)) == 1)
            await asyncio.wait_for(client.shutdown_session(), 10)
        assert [r.body["shown"] for r in proxy.calls(EVENTS)] == [1]  # nothing left to post at shutdown
        assert _metrics(empty_server.url, "m", "rust")["shown"] == 1


@pytest.mark.asyncio
async def test_plain_ollama_turns_posting_off_quietly() -> None:
    with plain_ollama() as proxy:
        options = {"serverUrl": proxy.url, "enable": False, "acceptanceIntervalSeconds": 0.1}
        async with language_server(options, {}) as client:
            client.protocol.notify(DID_SHOW, {"item": _item("m", "python")})
            assert await asyncio.to_thread(proxy.wait_for, lambda: len(proxy.calls(EVENTS)) == 1)
            client.protocol.notify(DID_SHOW, {"item": _item("m", "python")})
            await _accept(client, _item("m", "python"))
            await asyncio.wait_for(client.shutdown_session(), 10)
            assert client.error is None
            assert client.messages == []  # no pop-up: the counters are a nicety
            off = [m.message for m in client.log_messages if "acceptance counters are off" in m.message]
        assert len(off) == 1
        assert len(proxy.calls(EVENTS)) == 1  # one try, then never again this session


@pytest.mark.asyncio
async def test_malformed_events_count_under_fallback_labels(empty_server: Any) -> None:
    """An item without our command (another extension's, or an old client) still counts, for the
    configured model and language ``unknown``; odd values never reach the server as a 400."""
    with running_proxy(empty_server.url) as proxy:
        options = {"serverUrl": proxy.url, "enable": False, "completionModel": "fallback:1b"}
        async with language_server(options, {}) as client:
            client.protocol.notify(DID_SHOW, {"item": {"insertText": CODE}})
            client.protocol.notify(DID_SHOW, {})
            client.protocol.notify(DID_PARTIALLY_ACCEPT, {"item": {"insertText": CODE}, "acceptedLength": -4})
            await client.workspace_execute_command_async(types.ExecuteCommandParams(command=ACCEPT_COMMAND))
            await asyncio.wait_for(client.shutdown_session(), 10)
            assert client.error is None
        assert _metrics(empty_server.url, "fallback:1b", "unknown") == {
            "shown": 2,
            "accepted": 1,
            "partially_accepted": 1,
            "accepted_chars": 0,
        }
        assert all(r.body is not None and "insertText" not in r.body for r in proxy.calls(EVENTS))


def test_the_events_and_the_accept_command_are_registered() -> None:
    server = create_server()
    assert ACCEPT_COMMAND in server.protocol.fm.commands
    assert {DID_SHOW, DID_PARTIALLY_ACCEPT, types.SHUTDOWN} <= set(server.protocol.fm.features)
