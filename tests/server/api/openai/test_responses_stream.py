"""Native chat chunks → Responses events and objects, each checked against the `openai` SDK's types."""

from __future__ import annotations

import json
import typing
from typing import Any

import pydantic
from nativechunks import chat_chunk, chat_done, native_call
from openai.types.responses import Response, ResponseStreamEvent

from llamita.server.api.openai.responses_request import from_responses_request
from llamita.server.api.openai.responses_stream import ResponsesTurn, frame

# The SDK's event class for each event type (its union has no discriminator to pick one by).
EVENTS: dict[str, type[pydantic.BaseModel]] = {
    typing.get_args(kind.model_fields["type"].annotation)[0]: kind
    for kind in typing.get_args(typing.get_args(ResponseStreamEvent)[0])
}
SETTINGS = from_responses_request({"model": "m", "input": "hi"}).settings


def run(*chunks: dict[str, Any], on_done: Any = None) -> tuple[ResponsesTurn, list[dict[str, Any]]]:
    turn = ResponsesTurn(SETTINGS, on_done)
    events = [event for chunk in chunks for event in turn.translate(chunk)]
    for event in events:
        EVENTS[event["type"]].model_validate(
            event
        )  # every field the SDK's types require, with the right types
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return turn, events


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def test_thinking_then_text() -> None:
    done: list[Any] = []
    turn, events = run(
        chat_chunk(thinking="Let me "),
        chat_chunk(thinking="think."),
        chat_chunk("Hel"),
        chat_chunk("lo"),
        chat_done(),
        on_done=lambda response, message: done.append((response, message)),
    )
    assert kinds(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = events[-1]["response"]
    Response.model_validate(final)
    assert final["id"] == turn.id and final["id"].startswith("resp_") and final["status"] == "completed"
    reasoning, message = final["output"]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Let me think."}]
    assert reasoning["content"] == [{"type": "reasoning_text", "text": "Let me think."}]
    assert message["content"][0]["text"] == "Hello" and message["status"] == "completed"
    assert [e["output_index"] for e in events if e["type"] == "response.output_item.done"] == [0, 1]
    assert final["usage"] == {
        "input_tokens": 7,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 10,
    }
    assert done == [(final, {"role": "assistant", "content": "Hello", "thinking": "Let me think."})]


def test_tool_calls_are_function_call_items() -> None:
    calls = [native_call("get_weather", {"city": "Paris"}), native_call("f", {}, 1, "call_2")]
    turn, events = run(chat_chunk("Checking."), chat_chunk(tool_calls=calls), chat_done())
    call_events = [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
    ]
    assert kinds(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        *call_events,
        *call_events,
        "response.completed",
    ]
    final = events[-1]["response"]
    message, first, second = final["output"]
    assert message["type"] == "message" and message["content"][0]["text"] == "Checking."
    assert (first["type"], first["call_id"], first["name"]) == ("function_call", "call_abc", "get_weather")
    assert json.loads(first["arguments"]) == {"city": "Paris"} and second["call_id"] == "call_2"
    added = [e for e in events if e["type"] == "response.output_item.added"]
    assert [e["output_index"] for e in added] == [0, 1, 2] and added[1]["item"]["arguments"] == ""
    assert turn.assistant_message()["tool_calls"] == [
        {"id": "call_abc", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        {"id": "call_2", "function": {"name": "f", "arguments": {}}},
    ]


def test_a_length_cut_is_incomplete() -> None:
    _, events = run(chat_chunk("a"), chat_done("length"))
    assert events[-1]["type"] == "response.incomplete"
    final = events[-1]["response"]
    assert final["status"] == "incomplete" and final["incomplete_details"] == {"reason": "max_output_tokens"}


def test_replay_builds_the_same_response_without_events() -> None:
    final = ResponsesTurn(SETTINGS).replay([chat_chunk("a"), chat_chunk("b"), chat_done()])
    Response.model_validate(final)
    assert (
        final["output"][0]["content"][0]["text"] == "ab" and final["model"] == "m"
    )  # as the request named it
    assert final["tool_choice"] == "auto" and final["store"] is True


def test_an_empty_reply_has_no_output() -> None:
    _, events = run(chat_done())
    assert kinds(events) == ["response.created", "response.in_progress", "response.completed"]
    assert events[-1]["response"]["output"] == []


def test_a_failure_after_the_first_byte_is_response_failed() -> None:
    turn, events = run(chat_chunk("partial"))
    failed = turn.failed("model crashed", 500)
    EVENTS[failed["type"]].model_validate(failed)
    assert failed["type"] == "response.failed" and failed["sequence_number"] == len(events)
    response = failed["response"]
    assert response["status"] == "failed" and response["error"] == {
        "code": "server_error",
        "message": "model crashed",
    }
    assert response["output"][0]["content"] == []  # the open message, as it was announced
    assert turn.failed("canceled", 499)["response"]["error"]["code"] == "canceled"


def test_frames_name_the_event() -> None:
    event = {"type": "response.output_text.delta", "sequence_number": 3, "delta": "é"}
    head, data, end = frame(event).decode().split("\n", 2)
    assert head == "event: response.output_text.delta" and end == "\n"
    assert data == 'data: {"type":"response.output_text.delta","sequence_number":3,"delta":"é"}'


def test_input_tokens_include_the_cached_ones() -> None:
    _, events = run(chat_chunk("a"), {**chat_done(), "prompt_cache_tokens": 20})
    usage = events[-1]["response"]["usage"]
    assert (usage["input_tokens"], usage["input_tokens_details"]["cached_tokens"]) == (27, 20)
    assert usage["total_tokens"] == 30
