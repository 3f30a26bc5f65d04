"""Anthropic Messages bodies → native ``/api/chat`` bodies: the pure translation."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from llamita.server.api.anthropic.request import (
    from_count_request,
    from_messages_request,
    stop_sequences,
    think_of,
    thinking_shown,
)
from llamita.server.api.errors import APIError

PNG = base64.b64encode(b"\x89PNG fake").decode()
TOOL = {"name": "get_weather", "description": "Weather.", "input_schema": {"type": "object"}}


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}], **fields}


def test_minimal_body() -> None:
    assert from_messages_request(body()) == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "options": {"num_predict": 16},
        "stream": False,
    }


def test_sampling_stops_and_stream() -> None:
    native = from_messages_request(
        body(temperature=0.2, top_p=0.9, top_k=5, stop_sequences=["END", ""], stream=True, metadata={})
    )
    assert native["options"] == {
        "num_predict": 16,
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 5,
        "stop": ["END"],
    }
    assert native["stream"] is True
    assert stop_sequences(body(stop_sequences=["a", "b"])) == ["a", "b"]


@pytest.mark.parametrize(
    "system", ["Be terse.", [{"type": "text", "text": "Be"}, {"type": "text", "text": "terse."}]]
)
def test_system_string_or_text_blocks(system: Any) -> None:
    (first, _) = from_messages_request(body(system=system))["messages"]
    assert first["role"] == "system" and first["content"] in ("Be terse.", "Be\n\nterse.")


def test_tool_use_and_tool_result_history() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "weather?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "call it", "signature": "s"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "sunny"}],
                },
                {"type": "tool_result", "tool_use_id": "toolu_9", "content": "boom", "is_error": True},
                {"type": "text", "text": "thanks"},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1"}]},
    ]
    assert from_messages_request(body(messages=messages))["messages"] == [
        {"role": "user", "content": "weather?", "images": [PNG]},
        {
            "role": "assistant",
            "content": "Checking.",
            "thinking": "call it",
            "tool_calls": [
                {"id": "toolu_1", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
            ],
        },
        {"role": "tool", "content": "sunny", "tool_call_id": "toolu_1", "tool_name": "get_weather"},
        {"role": "tool", "content": "Error: boom", "tool_call_id": "toolu_9"},
        {"role": "user", "content": "thanks"},
        {"role": "tool", "content": "", "tool_call_id": "toolu_1", "tool_name": "get_weather"},
    ]


def test_tools_and_tool_choice() -> None:
    native = from_messages_request(body(tools=[TOOL, {**TOOL, "type": "custom", "name": "b"}]))
    assert native["tools"][0] == {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather.", "parameters": {"type": "object"}},
    }
    assert native["tools"][1]["function"]["name"] == "b" and "tool_choice" not in native

    def choice(value: dict[str, Any]) -> dict[str, Any]:
        native = from_messages_request(body(tools=[TOOL], tool_choice=value))
        return {k: native[k] for k in ("tool_choice", "parallel_tool_calls") if k in native}

    assert choice({"type": "auto"}) == {"tool_choice": "auto"}
    assert choice({"type": "any", "disable_parallel_tool_use": True}) == {
        "tool_choice": "required",
        "parallel_tool_calls": False,
    }
    assert choice({"type": "tool", "name": "get_weather"}) == {
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}}
    }
    assert choice({"type": "none"}) == {"tool_choice": "none"}


@pytest.mark.parametrize(
    ("fields", "think"),
    [
        ({}, None),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "low"),
        ({"thinking": {"type": "enabled", "budget_tokens": 4096}}, "medium"),
        ({"thinking": {"type": "enabled", "budget_tokens": 16384}}, "high"),
        ({"thinking": {"type": "disabled"}}, False),
        ({"thinking": {"type": "adaptive"}}, True),
        ({"output_config": {"effort": "xhigh"}}, "max"),
        ({"thinking": {"type": "adaptive", "display": "omitted"}}, True),
        ({"thinking": {"type": "from-the-future"}, "output_config": {"effort": "low"}}, None),
        ({"output_config": {"effort": "low"}, "thinking": {"type": "disabled"}}, False),
    ],
)
def test_thinking(fields: dict[str, Any], think: Any) -> None:
    assert think_of(body(**fields)) == think
    assert from_messages_request(body(**fields)).get("think") == think


def test_thinking_display() -> None:
    assert thinking_shown(body()) and thinking_shown(body(thinking={"type": "adaptive"}))
    assert not thinking_shown(body(thinking={"type": "adaptive", "display": "omitted"}))


def test_system_turns_inside_messages() -> None:
    """Claude Code sends one after the first user message: a native system message in place."""
    messages = [
        {"role": "user", "content": "hi"},
        {
            "role": "system",
            "content": [{"type": "text", "text": "env", "cache_control": {"type": "ephemeral"}}],
        },
    ]
    assert from_messages_request(body(messages=messages))["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "env"},
    ]


def test_claude_code_extras_are_accepted() -> None:
    """Shapes from Claude Code's default request: schema keywords, deferred tools, its extra fields."""
    tool = {
        "name": "Read",
        "input_schema": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"},
        "defer_loading": True,
    }
    native = from_messages_request(
        body(
            tools=[tool],
            thinking={"type": "adaptive", "display": "omitted"},
            context_management={"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
            output_config={"effort": "high"},
            metadata={"user_id": '{"device_id": "0"}'},
        )
    )
    assert native["tools"][0]["function"]["parameters"] == tool["input_schema"] and native["think"] is True
    assert "tools" not in from_messages_request(body(tools=[]))


def test_output_format_is_the_native_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    native = from_messages_request(body(output_config={"format": {"type": "json_schema", "schema": schema}}))
    assert native["format"] == schema


def test_count_body_needs_no_max_tokens_and_is_never_truncated() -> None:
    native = from_count_request(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [TOOL]}
    )
    assert native["truncate"] is False and "options" not in native and native["tools"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_tokens": None}, "max_tokens: Field required"),
        ({"max_tokens": "8"}, "max_tokens: Input should be an integer"),
        ({"max_tokens": 0}, "max_tokens: Input should be greater than or equal to 1"),
        ({"model": 3}, "model: Input should be a string"),
        ({"messages": []}, "messages: at least one message is required"),
        ({"messages": "hi"}, "messages: Input should be a list"),
        (
            {"messages": [{"role": "tool", "content": "x"}]},
            "messages.0.role: Input should be 'user', 'assistant' or 'system'",
        ),
        (
            {"messages": [{"role": "user", "content": 5}]},
            "messages.0.content: Input should be a string or a list of content blocks",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "document"}]}]},
            "messages.0.content.0.type: unsupported content block 'document' in a user message",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "b"}]}]},
            "messages.0.content.0.type: unsupported content block 'tool_use' in a user message",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "url", "url": "http://x"}}],
                    }
                ]
            },
            "messages.0.content.0.source: only base64 image sources are supported, not 'url'",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "base64", "data": "!!"}}],
                    }
                ]
            },
            "messages.0.content.0.source.data: invalid base64 image data",
        ),
        ({"system": 5}, "system: Input should be a string or a list of text blocks"),
        ({"temperature": "hot"}, "temperature: Input should be a number"),
        ({"temperature": True}, "temperature: Input should be a number"),
        ({"stream": "yes"}, "stream: Input should be a boolean"),
        ({"stop_sequences": [1]}, "stop_sequences: Input should be a list of strings"),
        ({"tools": [{"name": "x"}]}, "tools.0.input_schema: Field required"),
        (
            {"tools": [{"type": "web_search_20250305", "name": "web_search"}]},
            "tools.0.type: tool type 'web_search_20250305' is not supported (only custom tools)",
        ),
        (
            {"tool_choice": {"type": "some"}},
            "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'",
        ),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name: Field required"),
        ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens: Field required"),
        ({"metadata": "x"}, "metadata: Input should be an object"),
    ],
)
def test_bad_fields_are_400(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(APIError) as refused:
        from_messages_request(body(**fields))
    assert refused.value.status == 400 and str(refused.value) == message


def test_unknown_fields_are_ignored() -> None:
    assert from_messages_request(
        body(service_tier="auto", container=None, speed="fast")
    ) == from_messages_request(body())
