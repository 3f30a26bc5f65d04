"""The /v1 API through the official `openai` SDK, on a real server over smollm2:135m."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import ollama
import openai
import pytest

from llamita.server.model.default_model import DEFAULT_MODEL

pytestmark = pytest.mark.model

USER = [{"role": "user", "content": "Say hello in one word."}]


@pytest.fixture
def client(server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="ollama", max_retries=0, timeout=120) as sdk:
        yield sdk


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    models = list(client.models.list())
    assert [m.id for m in models] == [DEFAULT_MODEL]
    assert (models[0].object, models[0].owned_by) == ("model", "library") and models[0].created > 0

    model = client.models.retrieve(DEFAULT_MODEL)  # the colon travels in the path
    assert (model.id, model.owned_by, model.created) == (DEFAULT_MODEL, "library", models[0].created)


def test_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as retrieved:
        client.models.retrieve("nope")
    assert retrieved.value.body["message"] == "model 'nope:latest' not found"

    with pytest.raises(openai.NotFoundError) as chatted:
        client.chat.completions.create(model="nope", messages=USER)
    assert chatted.value.body["type"] == "not_found_error" and "not found" in chatted.value.body["message"]


def test_bad_request_is_typed(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=DEFAULT_MODEL, messages=[])
    assert info.value.body["message"] == "[] is too short - 'messages'"


def test_chat(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=DEFAULT_MODEL, messages=USER, max_tokens=8, temperature=0, seed=1
    )
    assert reply.id.startswith("chatcmpl-") and reply.object == "chat.completion"
    assert reply.system_fingerprint == "fp_ollama"
    (choice,) = reply.choices
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage.prompt_tokens > 0 and 0 < reply.usage.completion_tokens <= 8
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_chat_stream_with_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model=DEFAULT_MODEL,
            messages=USER,
            max_tokens=8,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1 and len({c.created for c in chunks}) == 1
    finished = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finished) == 1 and finished[0] in ("stop", "length")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None and 0 < usage.completion_tokens <= 8


def test_completion_respects_max_tokens(client: openai.OpenAI) -> None:
    reply = client.completions.create(
        model=DEFAULT_MODEL, prompt="def add(a, b):", max_tokens=5, temperature=0
    )
    assert reply.id.startswith("cmpl-") and reply.object == "text_completion"
    (choice,) = reply.choices
    assert isinstance(choice.text, str)
    assert 0 < reply.usage.completion_tokens <= 5
    assert choice.finish_reason == ("length" if reply.usage.completion_tokens == 5 else "stop")


@pytest.mark.parametrize("encoding", [None, "float"], ids=["sdk-default-base64", "float"])
def test_embeddings(client: openai.OpenAI, encoding: str | None) -> None:
    extra = {"encoding_format": encoding} if encoding else {}
    reply = client.embeddings.create(model=DEFAULT_MODEL, input=["hello", "world"], **extra)
    assert reply.object == "list" and reply.model == DEFAULT_MODEL
    assert [d.index for d in reply.data] == [0, 1]
    vectors = [d.embedding for d in reply.data]
    assert len(vectors[0]) == len(vectors[1]) > 0 and vectors[0] != vectors[1]
    assert math.isclose(math.sqrt(sum(x * x for x in vectors[0])), 1.0, rel_tol=1e-3)
    assert reply.usage.prompt_tokens > 0


def test_completion_suffix_is_fill_in_the_middle(server, client: openai.OpenAI, tmp_path: Path) -> None:
    from ggufgen import write_tiny_gguf

    native = ollama.Client(host=server.url)
    try:
        digest = native.create_blob(write_tiny_gguf(tmp_path / "c.gguf"))
        native.create(model="tiny-coder", files={"coder.gguf": digest})
    finally:
        native.close()
    fim = {"model": "tiny-coder", "prompt": "def add(", "suffix": "    return c"}

    rendered = client.completions.create(**fim, extra_body={"_debug_render_only": True})
    assert rendered.model_extra["_debug_info"]["rendered_template"] == (
        "<|fim_prefix|>def add(<|fim_suffix|>    return c<|fim_middle|>"
    )
    reply = client.completions.create(**fim, max_tokens=4, temperature=0)
    assert 0 < reply.usage.completion_tokens <= 4


NAMELESS = {"name": 5, "arguments": "{}"}
MALFORMED = [
    pytest.param(
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"properties": 5}}}]},
        "json: cannot unmarshal number into Go struct field ToolFunctionParameters.tools.function.parameters"
        ".properties of type map[string]api.ToolProperty",
        id="tool-properties",
    ),
    pytest.param(
        {"tools": [1]},
        "json: cannot unmarshal number into Go struct field ChatRequest.tools of type api.Tool",
        id="tool-not-an-object",
    ),
    pytest.param(
        {"messages": [{"role": "assistant", "tool_calls": [{"id": "c1", "function": NAMELESS}]}, *USER]},
        "json: cannot unmarshal number into Go struct field ToolCallFunction.messages.tool_calls.function"
        ".name of type string",
        id="tool-call-name",
    ),
    pytest.param(
        {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"enum": []}}}},
        "invalid format: llama.cpp cannot compile the grammar of the schema",
        id="schema-llama-cpp-rejects",
    ),
]


@pytest.mark.parametrize(("extra", "message"), MALFORMED)
def test_malformed_requests_are_typed_400s(client: openai.OpenAI, extra: dict, message: str) -> None:
    """Each was a 500 (a crash in the template or the engine) before issue 11."""
    request = {"model": DEFAULT_MODEL, "messages": USER, "max_tokens": 2, **extra}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(**request)
    assert info.value.body["message"].startswith(message)
