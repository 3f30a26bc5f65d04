"""``completion/acceptance.py`` without an editor: labels read back from items, bounded values, and the
reporter against a real llamita server (counts kept while it is unreachable, posted once it answers)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from serving import free_port

from llamita.lsp.client import OllamaClient
from llamita.lsp.completion.acceptance import (
    MAX_LENGTH,
    UNKNOWN,
    AcceptanceReporter,
    Labels,
    command_arguments,
    item_labels,
    labels_of,
)


def test_items_carry_labels_and_a_length_never_the_text() -> None:
    [argument] = command_arguments("coder:1.5b", "python", "return a + b")
    assert argument == {"model": "coder:1.5b", "language": "python", "length": 12}
    item = {"insertText": "return a + b", "command": {"command": "x", "arguments": [argument]}}
    assert item_labels(item, "fallback") == Labels("coder:1.5b", "python", 12)
    assert command_arguments("m", "", "x")[0]["language"] == UNKNOWN


@pytest.mark.parametrize(
    "argument",
    [None, {}, {"model": "", "language": " ", "length": True}, {"model": "a\nb", "language": "x" * 65}],
)
def test_odd_labels_fall_back(argument: Any) -> None:
    assert labels_of(argument, "fallback") == Labels("fallback", UNKNOWN, 0)


def test_lengths_are_bounded() -> None:
    assert labels_of({"length": -5}, "m").length == 0
    assert labels_of({"length": 10**12}, "m").length == MAX_LENGTH


def _shown(url: str, model: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("llamita_completions_shown_total{") and f'model="{model}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.asyncio
async def test_counts_wait_for_a_server_that_answers(empty_server: Any) -> None:
    client = OllamaClient(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    logged: list[str] = []
    reporter = AcceptanceReporter(client, logged.append)
    try:
        reporter.counter.shown(Labels("m", "python", 3))
        reporter.counter.accepted(Labels("m", "python", 3))
        await reporter.flush()
        reporter.counter.shown(Labels("m", "python", 3))
        await client.reconnect(empty_server.url, "")
        await reporter.close()
    finally:
        await client.aclose()
    assert _shown(empty_server.url, "m") == 2  # the failed batch was not lost, nor counted twice
    assert reporter.enabled and logged == []
