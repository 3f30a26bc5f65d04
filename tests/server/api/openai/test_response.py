"""Native chunks and replies → OpenAI objects, chunks and errors (api/openai/response.py)."""

from __future__ import annotations

import base64
import struct
from typing import Any

import pytest
from nativechunks import (
    CREATED,
    CREATED_AT,
    EMBEDDINGS,
    MANIFESTS,
    chat_chunk,
    chat_done,
    gen_chunk,
    gen_done,
    native_call,
)

from llamita.server.api.openai import response as openai
from llamita.server.api.openai import response as openai_response

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
