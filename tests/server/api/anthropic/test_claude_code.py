"""What Claude Code 2.1.332 really sends (bodies captured from ``claude -p``), replayed on a real
server over smollm2:135m with Claude Code's headers: each turn streams to ``message_stop``."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.model

CAPTURES = Path(__file__).with_name("claude_code")
HEADERS = {
    "Accept": "application/json",  # sent although the body asks for a stream
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27",
    "anthropic-dangerous-direct-browser-access": "true",
    "x-app": "cli",
    "x-api-key": "x",
}


@pytest.mark.parametrize("turn", ["first-turn", "tool-result-turn"])
def test_claude_code_turn_streams_to_the_end(server, turn: str) -> None:
    body = json.loads((CAPTURES / f"{turn}.json").read_text())
    body["max_tokens"] = 4  # the captured 64 takes long on a small CPU; the protocol is the same
    r = httpx.post(server.url + "/v1/messages?beta=true", json=body, headers=HEADERS, timeout=600)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream"), r.text
    names = [line.removeprefix("event: ") for line in r.text.splitlines() if line.startswith("event: ")]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert "error" not in names
