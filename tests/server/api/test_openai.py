"""The /v1 translation layer: pure conversions, then the handlers over scripted native chunks."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.testclient import TestClient

from llamita.server.api.errors import APIError
from llamita.server.api.openai import request as openai_request
from llamita.server.api.openai import response as openai_response
from llamita.server.api.openai import routes as openai
from llamita.server.api.request import chat_request, embed_request
from llamita.server.api.stream import respond
from llamita.server.runtime.requests import ChatRequest, EmbedRequest, GenerateRequest
from llamita.server.store.names import Name, parse_name

CREATED_AT = "2024-06-01T12:00:00.123456789Z"
CREATED = 1717243200
PNG = base64.b64encode(b"\x89PNG fake image").decode()
USER_HI = [{"role": "user", "content": "hi"}]
DEFAULT_OPTIONS = {"temperature": 1.0, "top_p": 1.0}


def chat_chunk(content: str = "", *, done: bool = False, **message: Any) -> dict[str, Any]:
    return {
        "model": "m",
        "created_at": CREATED_AT,
        "message": {"role": "assistant", "content": content, **message},
        "done": done,
    }


def chat_done(reason: str = "stop", content: str = "", **message: Any) -> dict[str, Any]:
    chunk = chat_chunk(content, done=True, **message)
    return {**chunk, "done_reason": reason, "prompt_eval_count": 7, "eval_count": 3, "total_duration": 9}


def gen_chunk(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "created_at": CREATED_AT, "response": text, "done": False, **extra}


def gen_done(reason: str = "stop", **extra: Any) -> dict[str, Any]:
    done = {**gen_chunk(""), "done": True, "done_reason": reason, "prompt_eval_count": 4, "eval_count": 2}
    return {**done, **extra}


def native_call(
    name: str, arguments: dict[str, Any], index: int = 0, call_id: str = "call_abc"
) -> dict[str, Any]:
    return {"id": call_id, "function": {"index": index, "name": name, "arguments": arguments}}


# --- errors and small helpers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        pytest.param(400, "invalid_request_error", id="400"),
        pytest.param(404, "not_found_error", id="404"),
        pytest.param(499, "canceled", id="499-superseded-or-aborted"),
        pytest.param(500, "api_error", id="500"),
        pytest.param(503, "api_error", id="503"),
    ],
)
def test_openai_error_type_follows_status(status: int, kind: str) -> None:
    assert openai.openai_error("boom", status) == {
        "error": {"message": "boom", "type": kind, "param": None, "code": None}
    }


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        pytest.param(CREATED_AT, CREATED, id="rfc3339-nano"),
        pytest.param("2024-06-01T14:00:00+02:00", CREATED, id="offset"),
    ],
)
def test_unix_time_parses_native_timestamps(stamp: str, expected: int) -> None:
    assert openai_response.unix_time(stamp) == expected


@pytest.mark.parametrize("stamp", [None, "", "yesterday"], ids=["none", "empty", "garbage"])
def test_unix_time_falls_back_to_now(stamp: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openai_response.time, "time", lambda: 1234.9)
    assert openai_response.unix_time(stamp) == 1234


def test_ids_follow_ollama_shape() -> None:
    for prefix in ("chatcmpl", "cmpl"):
        head, number = openai.new_id(prefix).split("-")
        assert head == prefix and 0 <= int(number) < 999


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


# --- responses ------------------------------------------------------------------------------


def test_chat_completion_from_merged_chunks() -> None:
    merged = openai.merge_chat([chat_chunk("Hel"), chat_chunk("lo", thinking="hm"), chat_done()])
    assert openai.to_chat_completion(merged, "chatcmpl-7") == {
        "id": "chatcmpl-7",
        "object": "chat.completion",
        "created": CREATED,
        "model": "m",
        "system_fingerprint": "fp_ollama",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello", "reasoning": "hm"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }


@pytest.mark.parametrize(
    ("reason", "calls", "finish"),
    [
        pytest.param("stop", True, "tool_calls", id="stop-with-calls"),
        pytest.param("length", True, "length", id="length-with-calls"),
        pytest.param("length", False, "length", id="length"),
    ],
)
def test_chat_completion_finish_reason(reason: str, calls: bool, finish: str) -> None:
    tool_calls = [native_call("weather", {"city": "Paris", "days": 2})] if calls else []
    merged = openai.merge_chat([chat_chunk(tool_calls=tool_calls), chat_done(reason)])
    choice = openai.to_chat_completion(merged, "chatcmpl-1")["choices"][0]
    assert choice["finish_reason"] == finish
    if calls:
        assert choice["message"]["tool_calls"] == [
            {
                "id": "call_abc",
                "index": 0,
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city":"Paris","days":2}'},
            }
        ]


def test_chat_completion_logprobs_and_missing_call_id() -> None:
    entry = {"token": "a", "logprob": -0.1, "top_logprobs": [{"token": "a", "logprob": -0.1}]}
    call = {"function": {"name": "f", "arguments": {}}}
    merged = openai.merge_chat([{**chat_chunk("a", tool_calls=[call]), "logprobs": [entry]}, chat_done()])
    choice = openai.to_chat_completion(merged, "chatcmpl-1")["choices"][0]
    assert choice["logprobs"] == {"content": [entry]}
    (converted,) = choice["message"]["tool_calls"]
    assert converted["id"].startswith("call_") and len(converted["id"]) == 13
    assert converted["function"] == {"name": "f", "arguments": "{}"}


def _deltas(chunks: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Any]]:
    return [(c["choices"][0]["delta"], c["choices"][0]["finish_reason"]) for c in chunks if c["choices"]]


def _stream_chat(native: list[dict[str, Any]], include_usage: bool = False) -> list[dict[str, Any]]:
    state = openai.ChatStream("chatcmpl-5", include_usage)
    return [chunk for item in native for chunk in openai.to_chat_chunks(item, state)]


CHAT_STREAMS = [
    pytest.param(
        [chat_chunk("Hel"), chat_chunk("lo"), chat_done()],
        [
            ({"role": "assistant", "content": "Hel"}, None),
            ({"content": "lo"}, None),
            ({}, "stop"),
        ],
        id="text-trailer-has-no-empty-chunk",
    ),
    pytest.param(
        [chat_done("length", content="")],
        [({"role": "assistant", "content": ""}, None), ({}, "length")],
        id="empty-completion-still-opens-with-role",
    ),
    pytest.param(
        [chat_chunk("", thinking="let me see"), chat_chunk("ok", thinking="!"), chat_done(content=".")],
        [
            ({"role": "assistant", "content": "", "reasoning": "let me see"}, None),
            ({"reasoning": "!"}, None),
            ({"content": "ok"}, None),
            ({"content": "."}, None),
            ({}, "stop"),
        ],
        id="thinking-split-from-content",
    ),
    pytest.param(
        [chat_chunk(tool_calls=[native_call("f", {"x": 1})]), chat_done()],
        [
            (
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": "call_abc",
                            "index": 0,
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"x":1}'},
                        }
                    ],
                },
                None,
            ),
            ({}, "tool_calls"),
        ],
        id="tool-call",
    ),
    pytest.param(
        [chat_chunk(tool_calls=[native_call("f", {})]), chat_done("length")],
        [
            (
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": "call_abc",
                            "index": 0,
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                None,
            ),
            ({}, "length"),
        ],
        id="tool-call-cut-by-length",
    ),
]


@pytest.mark.parametrize(("native", "expected"), CHAT_STREAMS)
def test_to_chat_chunks(native: list[dict[str, Any]], expected: list[tuple[dict[str, Any], Any]]) -> None:
    chunks = _stream_chat(native)
    assert _deltas(chunks) == expected
    assert {(c["id"], c["object"], c["created"], c["system_fingerprint"], c["model"]) for c in chunks} == {
        ("chatcmpl-5", "chat.completion.chunk", CREATED, "fp_ollama", "m")
    }
    assert all("usage" not in c for c in chunks)


def test_chat_stream_pins_created_and_adds_usage_chunk() -> None:
    later = {**chat_chunk("b"), "created_at": "2024-06-01T12:00:09Z"}
    chunks = _stream_chat([chat_chunk("a"), later, chat_done()], include_usage=True)
    assert {c["created"] for c in chunks} == {CREATED}
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


def test_completion_from_merged_chunks() -> None:
    merged = openai.merge_generate([gen_chunk("    c = a"), gen_chunk(" + b\n"), gen_done("length")])
    assert openai.to_completion(merged, "cmpl-3") == {
        "id": "cmpl-3",
        "object": "text_completion",
        "created": CREATED,
        "model": "m",
        "system_fingerprint": "fp_ollama",
        "choices": [{"text": "    c = a + b\n", "index": 0, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
    }


def test_completion_chunks_finish_on_the_done_chunk() -> None:
    state = openai.CompletionStream("cmpl-1", include_usage=True)
    chunks = [
        c for n in [gen_chunk("a"), gen_chunk("b"), gen_done()] for c in openai.to_completion_chunks(n, state)
    ]
    choices = [(c["choices"][0]["text"], c["choices"][0]["finish_reason"]) for c in chunks if c["choices"]]
    assert choices == [("a", None), ("b", None), ("", "stop")]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 6
    assert {(c["object"], c["created"]) for c in chunks} == {("text_completion", CREATED)}


def test_completion_logprobs_use_the_legacy_shape() -> None:
    first = [
        {
            "token": "ab",
            "logprob": -0.5,
            "top_logprobs": [{"token": "ab", "logprob": -0.5}, {"token": "a", "logprob": -1.0}],
        }
    ]
    second = [{"token": "c", "logprob": -0.1}, {"token": "d", "logprob": -0.2}]
    state = openai.CompletionStream("cmpl-1")
    openai.to_completion_chunks(gen_chunk("ab", logprobs=first), state)
    (chunk,) = openai.to_completion_chunks(gen_chunk("cd", logprobs=second), state)
    assert chunk["choices"][0]["logprobs"] == {
        "tokens": ["c", "d"],
        "token_logprobs": [-0.1, -0.2],
        "top_logprobs": [{}, {}],
        "text_offset": [2, 3],
    }
    merged = openai.merge_generate(
        [gen_chunk("ab", logprobs=first), gen_chunk("cd", logprobs=second), gen_done()]
    )
    legacy = openai.to_completion(merged, "cmpl-1")["choices"][0]["logprobs"]
    assert legacy["text_offset"] == [0, 2, 3]
    assert legacy["top_logprobs"][0] == {"ab": -0.5, "a": -1.0}


EMBEDDINGS = {"model": "e", "embeddings": [[0.5, -0.25], [1.0, 0.0]], "prompt_eval_count": 6}


def test_embedding_list_floats() -> None:
    assert openai.to_embedding_list(EMBEDDINGS, "float", model="e:latest") == {
        "object": "list",
        "data": [
            {"object": "embedding", "embedding": [0.5, -0.25], "index": 0},
            {"object": "embedding", "embedding": [1.0, 0.0], "index": 1},
        ],
        "model": "e:latest",
        "usage": {"prompt_tokens": 6, "total_tokens": 6},
    }


@pytest.mark.parametrize("encoding", ["base64", "BASE64"])
def test_embedding_list_base64_is_little_endian_float32(encoding: str) -> None:
    data = openai.to_embedding_list(EMBEDDINGS, encoding)["data"]
    raw = base64.b64decode(data[0]["embedding"])
    assert len(raw) == 8 and list(struct.unpack("<2f", raw)) == [0.5, -0.25]


@dataclass
class FakeManifest:
    name: Name
    modified: float


MANIFESTS = [
    FakeManifest(parse_name("old:1"), 100.7),
    FakeManifest(parse_name("hf.co/someone/coder:q4"), 300.0),
    FakeManifest(parse_name("team/new"), 200.0),
]


def test_model_list_is_newest_first_with_namespaces() -> None:
    assert openai.to_model_list(MANIFESTS) == {
        "object": "list",
        "data": [
            {"id": "hf.co/someone/coder:q4", "object": "model", "created": 300, "owned_by": "someone"},
            {"id": "team/new:latest", "object": "model", "created": 200, "owned_by": "team"},
            {"id": "old:1", "object": "model", "created": 100, "owned_by": "library"},
        ],
    }


def test_empty_model_list_has_null_data() -> None:
    assert openai.to_model_list([]) == {"object": "list", "data": None}


# --- handlers over scripted native chunks ---------------------------------------------------


class FakeNative:
    """Stands in for the runtime (``app.state.runtime``): records requests, replays a script."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        self.script: list[dict[str, Any] | Exception] = []
        self.embed_reply: dict[str, Any] | Exception = EMBEDDINGS
        self.closed = False

    async def _replay(self, req: Any) -> AsyncIterator[dict[str, Any]]:
        self.bodies.append(req)
        try:
            for item in self.script:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self.closed = True

    def chat(self, req: ChatRequest, session: str | None = None) -> AsyncIterator[dict[str, Any]]:
        return self._replay(req)

    def generate(self, req: GenerateRequest, session: str | None = None) -> AsyncIterator[dict[str, Any]]:
        return self._replay(req)

    async def embed(self, req: EmbedRequest) -> dict[str, Any]:
        self.bodies.append(req)
        if isinstance(self.embed_reply, Exception):
            raise self.embed_reply
        return self.embed_reply


class FakeStore:
    def __init__(self, manifests: list[FakeManifest]) -> None:
        self.manifests = manifests

    def iter_manifests(self) -> list[FakeManifest]:
        return list(self.manifests)

    def get(self, name: Name) -> FakeManifest | None:
        return next((m for m in self.manifests if m.name.key == name.key), None)


@pytest.fixture
def native() -> FakeNative:
    return FakeNative()


@pytest.fixture
def client(native: FakeNative) -> TestClient:
    app = Starlette(routes=openai.ROUTES)
    app.state.store = FakeStore(MANIFESTS)
    app.state.runtime = native
    return TestClient(app)


def sse_events(text: str) -> list[Any]:
    """Split an SSE body, checking the framing: ``data: <json>`` blocks separated by a blank line."""
    assert text.endswith("\n\n")
    events: list[Any] = []
    for block in text[:-2].split("\n\n"):
        assert block.startswith("data: ") and "\n" not in block
        payload = block.removeprefix("data: ")
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def test_chat_non_stream(client: TestClient, native: FakeNative) -> None:
    native.script = [chat_chunk("Hi"), chat_chunk(" there"), chat_done()]
    r = client.post("/v1/chat/completions", json={"model": "m", "messages": USER_HI, "max_tokens": 5})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["id"].startswith("chatcmpl-") and body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hi there"}
    assert body["usage"]["total_tokens"] == 10
    assert native.bodies == [
        chat_request(
            {
                "model": "m",
                "messages": USER_HI,
                "options": {**DEFAULT_OPTIONS, "num_predict": 5},
                "stream": False,
            }
        )
    ]


def test_chat_stream_with_usage(client: TestClient, native: FakeNative) -> None:
    native.script = [chat_chunk("Hi"), chat_chunk("!"), chat_done()]
    body = {"model": "m", "messages": USER_HI, "stream": True, "stream_options": {"include_usage": True}}
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert [c["choices"][0]["delta"] for c in chunks[:3]] == [
        {"role": "assistant", "content": "Hi"},
        {"content": "!"},
        {},
    ]
    assert chunks[2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[3]["choices"] == [] and chunks[3]["usage"]["completion_tokens"] == 3
    assert len({c["id"] for c in chunks}) == 1 and {c["created"] for c in chunks} == {CREATED}
    assert native.closed


def test_chat_stream_tool_calls(client: TestClient, native: FakeNative) -> None:
    native.script = [chat_chunk(tool_calls=[native_call("weather", {"city": "Oslo"})]), chat_done()]
    r = client.post(
        "/v1/chat/completions",
        json={"model": "m", "messages": USER_HI, "stream": True, "tools": [{"type": "function"}]},
    )
    chunks = sse_events(r.text)[:-1]
    (call,) = chunks[0]["choices"][0]["delta"]["tool_calls"]
    assert call["function"] == {"name": "weather", "arguments": '{"city":"Oslo"}'} and call["index"] == 0
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert native.bodies[0].tools == [{"type": "function"}]


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_error_before_first_chunk_keeps_its_status(
    client: TestClient, native: FakeNative, stream: bool
) -> None:
    native.script = [APIError("model 'nope' not found", 404)]
    r = client.post("/v1/chat/completions", json={"model": "nope", "messages": USER_HI, "stream": stream})
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"
    assert r.json() == openai.openai_error("model 'nope' not found", 404)


def test_error_mid_stream_is_a_final_error_event(client: TestClient, native: FakeNative) -> None:
    native.script = [chat_chunk("partial"), RuntimeError("runner crashed")]
    r = client.post("/v1/chat/completions", json={"model": "m", "messages": USER_HI, "stream": True})
    assert r.status_code == 200
    events = sse_events(r.text)
    assert events[0]["choices"][0]["delta"]["content"] == "partial"
    assert events[1:] == [openai.openai_error("runner crashed", 500)]  # no [DONE] after an error
    assert native.closed


def test_in_band_native_error_mid_stream(client: TestClient, native: FakeNative) -> None:
    native.script = [gen_chunk("a"), {"error": "out of memory"}]
    r = client.post("/v1/completions", json={"model": "m", "prompt": "x", "stream": True})
    assert sse_events(r.text)[-1] == openai.openai_error("out of memory", 500)


def test_error_after_first_chunk_without_stream(client: TestClient, native: FakeNative) -> None:
    native.script = [chat_chunk("partial"), APIError("request canceled", 499)]
    r = client.post("/v1/chat/completions", json={"model": "m", "messages": USER_HI})
    assert r.status_code == 499 and r.json()["error"]["type"] == "canceled"


def test_cancel_mid_stream_is_a_canceled_event_without_done(client: TestClient, native: FakeNative) -> None:
    native.script = [gen_chunk("a"), APIError("request canceled", 499)]
    r = client.post("/v1/completions", json={"model": "m", "prompt": "x", "stream": True})
    assert sse_events(r.text)[-1] == openai.openai_error("request canceled", 499)  # no [DONE]


@pytest.mark.parametrize(
    ("path", "payload", "message"),
    [
        pytest.param(
            "/v1/chat/completions", {"model": "m", "messages": []}, "[] is too short - 'messages'", id="chat"
        ),
        pytest.param(
            "/v1/completions",
            {"model": "m", "prompt": ["a"]},
            "invalid type for 'prompt' field: []interface {}",
            id="completion",
        ),
        pytest.param("/v1/embeddings", {"model": "m"}, "invalid input", id="embeddings"),
        pytest.param(
            "/v1/embeddings",
            {"model": "m", "input": "x", "encoding_format": "int8"},
            "Invalid value for 'encoding_format' = int8. Supported values: ['float', 'base64'].",
            id="encoding",
        ),
    ],
)
def test_request_errors_never_reach_native(
    client: TestClient, native: FakeNative, path: str, payload: dict[str, Any], message: str
) -> None:
    r = client.post(path, json=payload)
    assert (r.status_code, r.json()) == (400, openai.openai_error(message, 400))
    assert native.bodies == []


def test_missing_body(client: TestClient) -> None:
    r = client.post("/v1/chat/completions", content=b"")
    assert (r.status_code, r.json()["error"]["message"]) == (400, "missing request body")


def test_completions_forward_suffix_for_fim(client: TestClient, native: FakeNative) -> None:
    native.script = [gen_chunk("a + b"), gen_done()]
    r = client.post(
        "/v1/completions",
        json={"model": "m", "prompt": "def add(a, b):\n    return ", "suffix": "\n", "max_tokens": 8},
    )
    assert r.json()["choices"] == [{"text": "a + b", "index": 0, "finish_reason": "stop"}]
    assert r.json()["id"].startswith("cmpl-")
    (sent,) = native.bodies
    assert (sent.prompt, sent.suffix, sent.options["num_predict"]) == (
        "def add(a, b):\n    return ",
        "\n",
        8,
    )


def test_completions_stream_with_usage(client: TestClient, native: FakeNative) -> None:
    native.script = [gen_chunk("x"), gen_chunk("y"), gen_done("length")]
    r = client.post(
        "/v1/completions",
        json={"model": "m", "prompt": "p", "stream": True, "stream_options": {"include_usage": True}},
    )
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    assert [(e["choices"][0]["text"], e["choices"][0]["finish_reason"]) for e in events[:3]] == [
        ("x", None),
        ("y", None),
        ("", "length"),
    ]
    assert events[3]["choices"] == [] and events[3]["usage"] == {
        "prompt_tokens": 4,
        "completion_tokens": 2,
        "total_tokens": 6,
    }


@pytest.mark.parametrize("encoding", [None, "float", "base64"], ids=["default", "float", "base64"])
def test_embeddings(client: TestClient, native: FakeNative, encoding: str | None) -> None:
    payload: dict[str, Any] = {"model": "e", "input": ["a", "b"], "dimensions": 2}
    if encoding:
        payload["encoding_format"] = encoding
    r = client.post("/v1/embeddings", json=payload)
    body = r.json()
    vectors = [d["embedding"] for d in body["data"]]
    if encoding == "base64":
        vectors = [list(struct.unpack("<2f", base64.b64decode(v))) for v in vectors]
    assert vectors == EMBEDDINGS["embeddings"]
    assert (body["model"], body["usage"]) == ("e", {"prompt_tokens": 6, "total_tokens": 6})
    assert native.bodies == [embed_request({"model": "e", "input": ["a", "b"], "dimensions": 2})]


def test_embedding_native_error(client: TestClient, native: FakeNative) -> None:
    native.embed_reply = APIError('model "e" not found, try pulling it first', 404)
    r = client.post("/v1/embeddings", json={"model": "e", "input": "a"})
    assert (r.status_code, r.json()["error"]["type"]) == (404, "not_found_error")


def test_list_models(client: TestClient) -> None:
    r = client.get("/v1/models")
    assert r.status_code == 200
    assert [m["id"] for m in r.json()["data"]] == ["hf.co/someone/coder:q4", "team/new:latest", "old:1"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(
            "old:1", {"id": "old:1", "object": "model", "created": 100, "owned_by": "library"}, id="colon"
        ),
        pytest.param(
            "OLD:1", {"id": "OLD:1", "object": "model", "created": 100, "owned_by": "library"}, id="any-case"
        ),
        pytest.param(
            "team/new",
            {"id": "team/new", "object": "model", "created": 200, "owned_by": "team"},
            id="namespace",
        ),
        pytest.param(
            "hf.co/someone/coder:q4",
            {"id": "hf.co/someone/coder:q4", "object": "model", "created": 300, "owned_by": "someone"},
            id="host",
        ),
    ],
)
def test_retrieve_model(client: TestClient, path: str, expected: dict[str, Any]) -> None:
    r = client.get(f"/v1/models/{path}")
    assert (r.status_code, r.json()) == (200, expected)


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        pytest.param("nope", 404, "model 'nope:latest' not found", id="unknown"),
        pytest.param("a/b/c/d/e", 400, "invalid model name", id="invalid"),
    ],
)
def test_retrieve_model_errors(client: TestClient, path: str, status: int, message: str) -> None:
    r = client.get(f"/v1/models/{path}")
    assert (r.status_code, r.json()) == (status, openai.openai_error(message, status))


def test_closing_a_stream_stops_native_generation(native: FakeNative) -> None:
    """A client that hangs up closes the SSE body, which must close the runtime's iterator."""
    native.script = [chat_chunk("a"), chat_chunk("b"), chat_done()]

    async def first_event_then_hang_up() -> tuple[bytes, bool]:
        async def receive() -> dict[str, Any]:
            await asyncio.Event().wait()  # the client never hangs up before the first byte
            return {}

        request = Request({"type": "http", "method": "POST", "headers": []}, receive)
        state = openai.ChatStream("chatcmpl-1")
        response = await respond(
            request,
            native.chat(chat_request({})),
            stream=True,
            encoder=openai.OPENAI,
            translate=lambda c: openai.to_chat_chunks(c, state),
            collect=lambda chunks: JSONResponse({}),
        )
        body = response.body_iterator
        event = await anext(body)
        await body.aclose()
        return event, native.closed  # checked before asyncio.run closes leftover generators

    event, closed = asyncio.run(first_event_then_hang_up())
    assert event.startswith(b'data: {"id":"chatcmpl-1"') and closed
