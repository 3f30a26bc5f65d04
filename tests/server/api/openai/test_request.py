"""``/v1`` bodies → native ``/api/*`` bodies (api/openai/request.py): the pure translations."""

from __future__ import annotations

import re
from typing import Any

import pytest
from nativechunks import (
    DEFAULT_OPTIONS,
    PNG,
    USER_HI,
    native_call,
)

from llamita.server.api.errors import APIError
from llamita.server.api.openai import request as openai
from llamita.server.api.openai import request as openai_request

# --- chat request ---------------------------------------------------------------------------

CHAT_REQUESTS = [
    pytest.param(
        {"model": "m", "messages": USER_HI},
        {"model": "m", "messages": USER_HI, "options": DEFAULT_OPTIONS, "stream": False},
        id="defaults",
    ),
    pytest.param(
        {
            "model": "m",
            "messages": USER_HI,
            "stream": True,
            "max_tokens": 32,
            "seed": 42,
            "stop": "\n\n",
            "temperature": 0,
            "top_p": 0.5,
            "frequency_penalty": 0.25,
            "presence_penalty": -0.5,
        },
        {
            "model": "m",
            "messages": USER_HI,
            "stream": True,
            "options": {
                "num_predict": 32,
                "seed": 42,
                "stop": ["\n\n"],
                "temperature": 0,
                "top_p": 0.5,
                "frequency_penalty": 0.25,
                "presence_penalty": -0.5,
            },
        },
        id="sampling",
    ),
    pytest.param(
        {"model": "m", "messages": USER_HI, "stop": ["a", 1, None, "b"], "max_completion_tokens": 9.0},
        {
            "model": "m",
            "messages": USER_HI,
            "stream": False,
            "options": {**DEFAULT_OPTIONS, "stop": ["a", "b"], "num_predict": 9},
        },
        id="stop-list-drops-non-strings-and-max-completion-tokens",
    ),
    pytest.param(
        {"model": "m", "messages": USER_HI, "options": {"num_ctx": 8192}, "keep_alive": "5m", "n": 1},
        {"model": "m", "messages": USER_HI, "options": DEFAULT_OPTIONS, "stream": False},
        id="native-extras-ignored",
    ),
    pytest.param(
        {"model": "m", "messages": USER_HI, "response_format": {"type": " JSON_Object "}},
        {"model": "m", "messages": USER_HI, "options": DEFAULT_OPTIONS, "stream": False, "format": "json"},
        id="json-object",
    ),
    pytest.param(
        {
            "model": "m",
            "messages": USER_HI,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "object"}},
            },
        },
        {
            "model": "m",
            "messages": USER_HI,
            "options": DEFAULT_OPTIONS,
            "stream": False,
            "format": {"type": "object"},
        },
        id="json-schema",
    ),
    pytest.param(
        {"model": "m", "messages": USER_HI, "response_format": {"type": "text"}, "tools": []},
        {"model": "m", "messages": USER_HI, "options": DEFAULT_OPTIONS, "stream": False},
        id="text-format-and-empty-tools",
    ),
    pytest.param(
        {"model": "m", "messages": USER_HI, "tools": [{"type": "function", "function": {"name": "f"}}]},
        {
            "model": "m",
            "messages": USER_HI,
            "options": DEFAULT_OPTIONS,
            "stream": False,
            "tools": [{"type": "function", "function": {"name": "f"}}],
        },
        id="tools-pass-through",
    ),
    pytest.param(
        {
            "model": "m",
            "messages": USER_HI,
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "parallel_tool_calls": False,
        },
        {
            "model": "m",
            "messages": USER_HI,
            "options": DEFAULT_OPTIONS,
            "stream": False,
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "parallel_tool_calls": False,
        },
        id="tool-choice-pass-through",
    ),
    pytest.param(
        {"model": "m", "messages": USER_HI, "reasoning_effort": "xhigh", "logprobs": True, "top_logprobs": 3},
        {
            "model": "m",
            "messages": USER_HI,
            "options": DEFAULT_OPTIONS,
            "stream": False,
            "think": "max",
            "logprobs": True,
            "top_logprobs": 3,
        },
        id="reasoning-effort-and-logprobs",
    ),
    pytest.param(
        {"model": "m", "messages": USER_HI, "reasoning": {"effort": "none"}, "reasoning_effort": "high"},
        {"model": "m", "messages": USER_HI, "options": DEFAULT_OPTIONS, "stream": False, "think": False},
        id="reasoning-object-wins",
    ),
]


@pytest.mark.parametrize(("body", "expected"), CHAT_REQUESTS)
def test_from_chat_request(body: dict[str, Any], expected: dict[str, Any]) -> None:
    assert openai.from_chat_request(body) == expected


CHAT_MESSAGES = [
    pytest.param(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": f"data:;base64,{PNG[:8]}\n{PNG[8:]}"},
                ],
            }
        ],
        [
            {"role": "user", "content": "what is this?"},
            {"role": "user", "content": "", "images": [PNG]},
            {"role": "user", "content": "", "images": [PNG]},
        ],
        id="parts-become-messages",
    ),
    pytest.param(
        [
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "reasoning": "need a tool",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                    },
                    {"id": "call_2", "type": "function", "function": {"name": "time", "arguments": "{}"}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_2", "content": "12:00"},
            {"role": "tool", "name": "weather", "content": "sunny"},
        ],
        [
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": "",
                "thinking": "need a tool",
                "tool_calls": [
                    native_call("weather", {"city": "Paris"}, 0, "call_1"),
                    native_call("time", {}, 1, "call_2"),
                ],
            },
            {"role": "tool", "content": "12:00", "tool_name": "time", "tool_call_id": "call_2"},
            {"role": "tool", "content": "sunny", "tool_name": "weather"},
        ],
        id="tool-round-trip",
    ),
    pytest.param(
        [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": "x", "function": {"name": "f", "arguments": {"a": 1}}}],
            },
            {"role": "tool", "tool_call_id": "x", "content": [{"type": "text", "text": "done"}]},
        ],
        [
            {"role": "assistant", "content": "", "tool_calls": [native_call("f", {"a": 1}, 0, "x")]},
            {"role": "tool", "content": "done", "tool_name": "f", "tool_call_id": "x"},
        ],
        id="object-arguments-and-tool-parts",
    ),
    pytest.param(
        [{"role": "tool", "tool_call_id": "unknown", "content": "?"}],
        [{"role": "tool", "content": "?", "tool_call_id": "unknown"}],
        id="unknown-tool-call-id",
    ),
]


@pytest.mark.parametrize(("messages", "expected"), CHAT_MESSAGES)
def test_chat_messages(messages: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert openai.from_chat_request({"model": "m", "messages": messages})["messages"] == expected


CHAT_ERRORS = [
    pytest.param({"model": "m"}, "[] is too short - 'messages'", id="messages-missing"),
    pytest.param({"model": "m", "messages": []}, "[] is too short - 'messages'", id="messages-empty"),
    pytest.param({"messages": "hi"}, "invalid type for 'messages' field: string", id="messages-string"),
    pytest.param(
        {"messages": [{"role": "user", "content": 2}]},
        "invalid message content type: float64",
        id="content-number",
    ),
    pytest.param(
        {"messages": [{"role": "user"}]}, "invalid message content type: <nil>", id="content-missing"
    ),
    pytest.param({"messages": ["hi"]}, "invalid message format", id="message-string"),
    pytest.param(
        {
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}
            ]
        },
        "image URLs are not currently supported, please use base64 encoded data instead",
        id="remote-image",
    ),
    pytest.param(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": "data:image/gif;base64,AAAA"}],
                }
            ]
        },
        "invalid image input",
        id="gif-data-url",
    ),
    pytest.param(
        {
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": "data:image/png;base64,@@"}]}
            ]
        },
        "invalid image input",
        id="bad-base64",
    ),
    pytest.param(
        {"messages": [{"role": "user", "content": [{"type": "video", "video": "x"}]}]},
        "invalid message format",
        id="unknown-part",
    ),
    pytest.param(
        {"messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}]},
        "invalid message format",
        id="text-part-not-string",
    ),
    pytest.param(
        {
            "messages": [
                {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{nope"}}]}
            ]
        },
        "invalid tool call arguments",
        id="bad-arguments",
    ),
    pytest.param(
        {"messages": USER_HI, "reasoning_effort": "extreme"},
        'invalid reasoning value: "extreme" (must be "minimal", "low", "medium", "high", "xhigh", "ultra", '
        '"max", or "none")',
        id="bad-effort",
    ),
    pytest.param(
        {"messages": USER_HI, "temperature": "hot"}, "invalid type for 'temperature' field: string", id="temp"
    ),
    pytest.param(
        {"messages": USER_HI, "max_tokens": 1.5},
        "invalid type for 'max_tokens' field: a whole number is required",
        id="max-tokens-fraction",
    ),
    pytest.param(
        {"messages": USER_HI, "stream": "yes"}, "invalid type for 'stream' field: string", id="stream-string"
    ),
    pytest.param({"messages": USER_HI, "seed": True}, "invalid type for 'seed' field: bool", id="seed-bool"),
    pytest.param(
        {"messages": USER_HI, "tool_choice": 1},
        "invalid type for 'tool_choice' field: float64",
        id="choice-num",
    ),
    pytest.param(
        {"messages": USER_HI, "parallel_tool_calls": "no"},
        "invalid type for 'parallel_tool_calls' field: string",
        id="parallel-string",
    ),
]


@pytest.mark.parametrize(("body", "message"), CHAT_ERRORS)
def test_from_chat_request_rejects(body: dict[str, Any], message: str) -> None:
    with pytest.raises(APIError) as info:
        openai.from_chat_request(body)
    assert (str(info.value), info.value.status) == (message, 400)


@pytest.mark.parametrize(
    ("effort", "think"),
    [
        pytest.param(None, None, id="unset"),
        pytest.param("", None, id="empty"),
        pytest.param("none", False, id="none"),
        pytest.param("minimal", "low", id="minimal"),
        pytest.param("low", "low", id="low"),
        pytest.param("medium", "medium", id="medium"),
        pytest.param("high", "high", id="high"),
        pytest.param("max", "max", id="max"),
        pytest.param("xhigh", "max", id="xhigh"),
        pytest.param("ultra", "max", id="ultra"),
    ],
)
def test_think_from_effort(effort: Any, think: Any) -> None:
    assert openai_request.think_from_effort(effort) == think


# --- completion and embedding requests ------------------------------------------------------

COMPLETION_OPTIONS = {"temperature": 1.0, "top_p": 1.0, "frequency_penalty": 0.0, "presence_penalty": 0.0}

COMPLETION_REQUESTS = [
    pytest.param(
        {"model": "m", "prompt": "def f("},
        {"model": "m", "prompt": "def f(", "options": COMPLETION_OPTIONS, "stream": False},
        id="defaults",
    ),
    pytest.param(
        {
            "model": "m",
            "prompt": "def add(",
            "suffix": "    return c",
            "max_tokens": 16,
            "stop": ["\n\n"],
            "stream": True,
        },
        {
            "model": "m",
            "prompt": "def add(",
            "suffix": "    return c",
            "options": {**COMPLETION_OPTIONS, "num_predict": 16, "stop": ["\n\n"]},
            "stream": True,
        },
        id="fim-suffix",
    ),
    pytest.param(
        {"model": "m", "prompt": "x", "suffix": "", "top_p": 0, "temperature": 0.2, "seed": 1, "stop": "END"},
        {
            "model": "m",
            "prompt": "x",
            "options": {**COMPLETION_OPTIONS, "temperature": 0.2, "seed": 1, "stop": ["END"]},
            "stream": False,
        },
        id="empty-suffix-zero-top-p",
    ),
    pytest.param(
        {"model": "m", "prompt": "x", "logprobs": 2, "frequency_penalty": 0.5},
        {
            "model": "m",
            "prompt": "x",
            "options": {**COMPLETION_OPTIONS, "frequency_penalty": 0.5},
            "stream": False,
            "logprobs": True,
            "top_logprobs": 2,
        },
        id="logprobs",
    ),
    pytest.param(
        {"model": "m"},
        {"model": "m", "prompt": "", "options": COMPLETION_OPTIONS, "stream": False},
        id="no-prompt",
    ),
]


@pytest.mark.parametrize(("body", "expected"), COMPLETION_REQUESTS)
def test_from_completion_request(body: dict[str, Any], expected: dict[str, Any]) -> None:
    assert openai.from_completion_request(body) == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            {"prompt": "x", "stop": ["a", 1.5]}, "invalid type for 'stop' field: float64", id="stop-number"
        ),
        pytest.param(
            {"prompt": ["a", "b"]}, "invalid type for 'prompt' field: []interface {}", id="prompt-list"
        ),
        pytest.param(
            {"prompt": "x", "suffix": 1}, "invalid type for 'suffix' field: float64", id="suffix-number"
        ),
    ],
)
def test_from_completion_request_rejects(body: dict[str, Any], message: str) -> None:
    with pytest.raises(APIError, match=f"^{re.escape(message)}$"):
        openai.from_completion_request(body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"model": "e", "input": "hi"}, {"model": "e", "input": "hi"}, id="string"),
        pytest.param({"model": "e", "input": ["a", "b"]}, {"model": "e", "input": ["a", "b"]}, id="list"),
        pytest.param({"model": "e", "input": ""}, {"model": "e", "input": [""]}, id="empty-string"),
        pytest.param(
            {"model": "e", "input": "hi", "dimensions": 64, "encoding_format": "BASE64"},
            {"model": "e", "input": "hi", "dimensions": 64},
            id="dimensions",
        ),
    ],
)
def test_from_embedding_request(body: dict[str, Any], expected: dict[str, Any]) -> None:
    assert openai.from_embedding_request(body) == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({"model": "e"}, "invalid input", id="missing"),
        pytest.param({"model": "e", "input": []}, "invalid input", id="empty-list"),
        pytest.param({"model": "e", "input": [1, 2]}, "invalid input type", id="tokens"),
        pytest.param(
            {"model": "e", "encoding_format": "hex"},
            "Invalid value for 'encoding_format' = hex. Supported values: ['float', 'base64'].",
            id="format-checked-first",
        ),
    ],
)
def test_from_embedding_request_rejects(body: dict[str, Any], message: str) -> None:
    with pytest.raises(APIError) as info:
        openai.from_embedding_request(body)
    assert (str(info.value), info.value.status) == (message, 400)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, "float", id="absent"),
        pytest.param("float", "float", id="float"),
        pytest.param("Base64", "base64", id="base64-any-case"),
    ],
)
def test_embedding_format(value: Any, expected: str) -> None:
    assert openai.embedding_format({"encoding_format": value}) == expected
