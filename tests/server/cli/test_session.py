"""Session state and the streamed turns of ``llamita run`` (fake client)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from llamita.server.cli.session import Session, keep_alive_json, stream_chat, stream_generate
from llamita.server.client import ResponseError

from .fakes import MODEL, FakeClient, chunks, console


@pytest.mark.parametrize(
    ("seconds", "wire"),
    [(300.0, "5m0s"), (0.0, "0s"), (1.5, "1.5s"), (0.3, "300ms"), (5400.0, "1h30m0s"), (-1.0, -1)],
    ids=["5m", "zero", "fraction", "millis", "hours", "negative"],
)
def test_keep_alive_json(seconds: float, wire: str | int) -> None:
    assert keep_alive_json(seconds) == wire


def _interrupted(
    stream: list[dict[str, Any]], error: BaseException | None = None
) -> Iterator[dict[str, Any]]:
    """A stream that fails part-way, as the real client's lazy stream does."""
    yield from stream
    raise error or KeyboardInterrupt


def test_chat_turn_returns_the_assistant_message() -> None:
    client, c = FakeClient(), console()
    client.replies.append(chunks("Hi you", thinking="hmm"))
    session = Session(model=MODEL, messages=[{"role": "user", "content": "hello"}])
    reply = stream_chat(client, session, c)
    assert reply == {"role": "assistant", "content": "Hi you", "thinking": "hmm"}
    assert c.out.getvalue() == "Thinking...\nhmm\n...done thinking.\n\nHi you\n\n"


def test_ctrl_c_ends_a_turn_without_a_reply() -> None:
    client, c = FakeClient(), console()
    client.chat = lambda body: _interrupted(chunks("Hi there")[:2])  # type: ignore[method-assign]
    assert stream_chat(client, Session(model=MODEL), c) is None
    assert c.out.getvalue() == "Hi there\n"
    client.generate = lambda body: _interrupted([{"response": "Hi"}])  # type: ignore[method-assign]
    c = console()
    stream_generate(client, Session(model=MODEL, prompt="q"), c)
    assert c.out.getvalue() == "Hi"


def test_upstream_errors_are_reported_and_the_turn_dropped() -> None:
    client, c = FakeClient(), console()
    client.chat = lambda body: _interrupted([], ResponseError("upstream error", 502))  # type: ignore[method-assign]
    assert stream_chat(client, Session(model=MODEL), c) is None
    assert c.out.getvalue() == "An error occurred while processing your message. Please try again.\n\n"


def test_tool_calls_print_before_content_in_chat_and_after_in_generate() -> None:
    call = {"function": {"name": "f", "arguments": {}}}
    client, c = FakeClient(), console()
    client.replies.append(
        [{"message": {"role": "assistant", "content": "x", "tool_calls": [call]}, "done": True}]
    )
    stream_chat(client, Session(model=MODEL), c)
    assert c.out.getvalue().startswith("  Model called a non-existent function 'f()'")
    client.replies.append(
        [{"message": {"role": "assistant", "content": "x", "tool_calls": [call]}, "done": True}]
    )
    c = console()
    stream_generate(client, Session(model=MODEL, prompt="q"), c)
    assert c.out.getvalue().startswith("x  Model called")
