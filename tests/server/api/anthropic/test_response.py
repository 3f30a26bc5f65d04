"""Native ``/api/chat`` chunks → Anthropic messages, stream events and errors: pure functions."""

from __future__ import annotations

from typing import Any

import pytest

from llamita.server.api.anthropic.response import (
    MessageStream,
    anthropic_error,
    error_status,
    signature,
    stop_reason,
    to_events,
    to_message,
    usage,
)

CALL = {"id": "toolu_a", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
DONE = {
    "done": True,
    "done_reason": "stop",
    "prompt_eval_count": 7,
    "prompt_cache_tokens": 3,
    "eval_count": 5,
}


def chunk(**message: Any) -> dict[str, Any]:
    return {"model": "m", "message": {"role": "assistant", "content": "", **message}, "done": False}


def done(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "message": {"role": "assistant", "content": ""}, **DONE, **fields}


def test_message() -> None:
    native = {
        **done(),
        "message": {"role": "assistant", "content": "Hi", "thinking": "hm", "tool_calls": [CALL]},
    }
    assert to_message(native, "msg_1", "as-sent", []) == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "as-sent",
        "content": [
            {"type": "thinking", "thinking": "hm", "signature": signature("hm")},
            {"type": "text", "text": "Hi"},
            {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Paris"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 7,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 3,
            "output_tokens": 5,
        },
    }


def test_tool_use_ids() -> None:
    calls = [{"function": {"name": "f"}}, {"id": "call_x1", "function": {"name": "f"}}]
    native = {**done(), "message": {"role": "assistant", "content": "", "tool_calls": calls}}
    (fresh, parsed) = to_message(native, "msg_1", "m", [])["content"]
    assert fresh["id"].startswith("toolu_") and fresh["input"] == {}
    assert parsed["id"] == "toolu_x1"


@pytest.mark.parametrize(
    ("native", "stops", "tool_use", "expected"),
    [
        ({"done_reason": "stop"}, [], False, ("end_turn", None)),
        ({"done_reason": "length"}, [], False, ("max_tokens", None)),
        ({"done_reason": "stop", "stop_sequence": "END"}, ["END"], False, ("stop_sequence", "END")),
        ({"done_reason": "stop", "stop_sequence": "<|im_end|>"}, ["END"], False, ("end_turn", None)),
        ({"done_reason": "stop"}, [], True, ("tool_use", None)),
    ],
)
def test_stop_reason(native: dict[str, Any], stops: list[str], tool_use: bool, expected: tuple) -> None:
    assert stop_reason(native, stops, tool_use) == expected


def test_stream_events_thinking_text_tool_use() -> None:
    state = MessageStream("msg_1", "m", ["END"])
    script = [
        chunk(thinking="a"),
        chunk(thinking="b"),
        chunk(content="Hi"),
        chunk(content="!"),
        chunk(tool_calls=[CALL]),
        done(stop_sequence="END"),
    ]
    events = [event for native in script for event in to_events(native, state)]
    assert [(e["type"], e.get("index")) for e in events] == [
        ("message_start", None),
        ("ping", None),
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_delta", 0),
        ("content_block_delta", 0),  # the signature
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_delta", 2),
        ("content_block_stop", 2),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert events[0]["message"]["content"] == [] and events[0]["message"]["stop_reason"] is None
    assert events[2]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert events[3]["delta"] == {"type": "thinking_delta", "thinking": "a"}
    assert events[5]["delta"] == {"type": "signature_delta", "signature": signature("ab")}
    assert events[7]["content_block"] == {"type": "text", "text": ""}
    assert events[9]["delta"] == {"type": "text_delta", "text": "!"}
    assert events[11]["content_block"] == {
        "type": "tool_use",
        "id": "toolu_a",
        "name": "get_weather",
        "input": {},
    }
    assert events[12]["delta"] == {"type": "input_json_delta", "partial_json": '{"city":"Paris"}'}
    assert events[14]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert events[14]["usage"] == usage(DONE)


def test_omitted_thinking_keeps_only_the_signature() -> None:
    state = MessageStream("msg_1", "m", show_thinking=False)
    events = to_events(chunk(thinking="secret"), state) + to_events(chunk(content="Hi"), state)
    assert [e["delta"]["type"] for e in events if e["type"] == "content_block_delta"] == [
        "signature_delta",
        "text_delta",
    ]
    native = {**done(), "message": {"role": "assistant", "content": "Hi", "thinking": "secret"}}
    (thinking, _) = to_message(native, "msg_1", "m", [], show_thinking=False)["content"]
    assert thinking == {"type": "thinking", "thinking": "", "signature": signature("secret")}


def test_stream_of_nothing_still_starts_and_stops() -> None:
    state = MessageStream("msg_1", "m")
    events = to_events(done(done_reason="length"), state)
    assert [e["type"] for e in events] == ["message_start", "ping", "message_delta", "message_stop"]
    assert events[2]["delta"] == {"stop_reason": "max_tokens", "stop_sequence": None}


def test_stop_sequence_in_stream() -> None:
    state = MessageStream("msg_1", "m", ["END"])
    events = to_events(chunk(content="x"), state) + to_events(done(stop_sequence="END"), state)
    assert events[-2]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "END"}


@pytest.mark.parametrize(
    ("status", "sent", "kind"),
    [
        (400, 400, "invalid_request_error"),
        (401, 401, "authentication_error"),
        (403, 403, "permission_error"),
        (404, 404, "not_found_error"),
        (429, 429, "rate_limit_error"),
        (499, 499, "canceled"),
        (500, 500, "api_error"),
        (503, 529, "overloaded_error"),
    ],
)
def test_errors(status: int, sent: int, kind: str) -> None:
    assert error_status(status) == sent
    assert anthropic_error("boom", status) == {"type": "error", "error": {"type": kind, "message": "boom"}}
