"""/v1/messages through the official ``anthropic`` SDK, on a real server over smollm2:135m.

The 2026 SDK has no sampling arguments (``temperature``, ``top_k``...): the API still takes
them, so the tests send them as extra body fields to get greedy, repeatable output.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import httpx
import pytest
from serving import serve_app

from llamita.server.api import build_app
from llamita.server.model.default_model import DEFAULT_MODEL
from llamita.server.store.blobs import Store

pytestmark = pytest.mark.model

GREEDY = {"temperature": 0, "top_k": 1}
USER = [{"role": "user", "content": "Say hello in one word."}]
LONG = [{"role": "user", "content": "Write a long story about a dragon and a knight."}]
WEATHER = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TOOL_HISTORY = [
    {"role": "user", "content": "What is the weather in Paris and in Rome?"},
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}},
        ],
    },
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny, 21 C"},
            {
                "type": "tool_result",
                "tool_use_id": "toolu_2",
                "content": [{"type": "text", "text": "service down"}],
                "is_error": True,
            },
            {"type": "text", "text": "Answer in one sentence."},
        ],
    },
]


@pytest.fixture
def client(server) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.url, api_key="any", max_retries=0, timeout=120) as sdk:
        yield sdk


def test_message(client: anthropic.Anthropic) -> None:
    reply = client.messages.create(
        model=DEFAULT_MODEL, max_tokens=8, messages=USER, metadata={"user_id": "u-1"}, extra_body=GREEDY
    )
    assert reply.id.startswith("msg_") and reply.type == "message" and reply.role == "assistant"
    assert reply.model == DEFAULT_MODEL
    assert [block.type for block in reply.content] == ["text"] and reply.content[0].text
    assert reply.stop_reason in ("end_turn", "max_tokens") and reply.stop_sequence is None
    assert reply.usage.input_tokens > 0 and 0 < reply.usage.output_tokens <= 8


def test_stream_events_and_final_message(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model=DEFAULT_MODEL, max_tokens=8, messages=USER, extra_body=GREEDY
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    kinds = [e.type for e in events if e.type != "text"]  # "text": the SDK's own helper event
    assert kinds[:2] == ["message_start", "content_block_start"]  # the SDK does not yield pings
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert final.id.startswith("msg_") and [b.type for b in final.content] == ["text"]
    assert final.content[0].text == text and text
    assert final.stop_reason in ("end_turn", "max_tokens") and 0 < final.usage.output_tokens <= 8

    whole = client.messages.create(model=DEFAULT_MODEL, max_tokens=8, messages=USER, extra_body=GREEDY)
    assert whole.content[0].text == text  # greedy: streamed or not, the same answer


def test_max_tokens_stops_the_message(client: anthropic.Anthropic) -> None:
    reply = client.messages.create(model=DEFAULT_MODEL, max_tokens=2, messages=LONG, extra_body=GREEDY)
    assert reply.stop_reason == "max_tokens" and reply.usage.output_tokens == 2


def test_stop_sequences(client: anthropic.Anthropic) -> None:
    free = client.messages.create(model=DEFAULT_MODEL, max_tokens=12, messages=LONG, extra_body=GREEDY)
    words = free.content[0].text.split()
    assert len(words) >= 3, free.content[0].text
    stop = words[2]
    cut = client.messages.create(
        model=DEFAULT_MODEL, max_tokens=12, messages=LONG, stop_sequences=[stop], extra_body=GREEDY
    )
    text = cut.content[0].text if cut.content else ""
    assert stop not in text and free.content[0].text.startswith(text)
    assert (cut.stop_reason, cut.stop_sequence) == ("stop_sequence", stop)


def test_system_blocks_and_count_tokens(client: anthropic.Anthropic) -> None:
    system = "You are terse."
    as_string = client.messages.count_tokens(model=DEFAULT_MODEL, system=system, messages=USER)
    as_blocks = client.messages.count_tokens(
        model=DEFAULT_MODEL, system=[{"type": "text", "text": system}], messages=USER
    )
    longer = client.messages.count_tokens(
        model=DEFAULT_MODEL, system=system + " You answer in French.", messages=USER
    )
    assert 0 < as_string.input_tokens == as_blocks.input_tokens < longer.input_tokens

    reply = client.messages.create(
        model=DEFAULT_MODEL,
        max_tokens=4,
        system=[{"type": "text", "text": system}],
        messages=USER,
        extra_body=GREEDY,
    )
    used = reply.usage.input_tokens + (reply.usage.cache_read_input_tokens or 0)
    assert used == as_blocks.input_tokens  # counted as generation renders and tokenizes it


def test_tool_history_is_rendered(client: anthropic.Anthropic) -> None:
    question = client.messages.count_tokens(model=DEFAULT_MODEL, messages=TOOL_HISTORY[:1], tools=[WEATHER])
    history = client.messages.count_tokens(model=DEFAULT_MODEL, messages=TOOL_HISTORY, tools=[WEATHER])
    assert history.input_tokens > question.input_tokens + 20
    reply = client.messages.create(
        model=DEFAULT_MODEL, max_tokens=8, messages=TOOL_HISTORY, tools=[WEATHER], extra_body=GREEDY
    )
    assert reply.stop_reason in ("end_turn", "max_tokens", "tool_use")


@pytest.mark.parametrize(
    "thinking", [{"type": "enabled", "budget_tokens": 2048}, {"type": "adaptive"}, {"type": "disabled"}]
)
def test_thinking_is_accepted_by_a_model_that_cannot_think(
    client: anthropic.Anthropic, thinking: dict[str, object]
) -> None:
    reply = client.messages.create(
        model=DEFAULT_MODEL, max_tokens=4, messages=USER, thinking=thinking, extra_body=GREEDY
    )
    assert [b.type for b in reply.content] == ["text"]  # smollm2 has no thinking: it just answers


@pytest.mark.parametrize(
    "choice", [{"type": "any"}, {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}]
)
def test_tool_choice_forces_a_tool_use(client: anthropic.Anthropic, choice: dict[str, object]) -> None:
    reply = client.messages.create(
        model=DEFAULT_MODEL,
        max_tokens=48,
        messages=[{"role": "user", "content": "Hello!"}],
        tools=[WEATHER],
        tool_choice=choice,
        extra_body=GREEDY,
    )
    uses = [b for b in reply.content if b.type == "tool_use"]
    assert reply.stop_reason == "tool_use" and uses, reply
    assert uses[0].name == "get_weather" and uses[0].id.startswith("toolu_")
    assert isinstance(uses[0].input, dict) and isinstance(uses[0].input.get("city"), str)


def test_forced_tool_use_streams_as_input_json(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model=DEFAULT_MODEL,
        max_tokens=48,
        messages=[{"role": "user", "content": "Hello!"}],
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        extra_body=GREEDY,
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    partial = "".join(
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    )
    (use,) = [b for b in final.content if b.type == "tool_use"]
    assert json.loads(partial) == use.input and final.stop_reason == "tool_use"


def test_errors_are_typed(client: anthropic.Anthropic, server) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="nope", max_tokens=4, messages=USER)
    assert missing.value.body["error"]["type"] == "not_found_error"
    assert "not found" in missing.value.body["error"]["message"]
    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model="nope", messages=USER)
    with pytest.raises(anthropic.BadRequestError) as zero:
        client.messages.create(model=DEFAULT_MODEL, max_tokens=0, messages=USER)
    assert zero.value.body["error"]["type"] == "invalid_request_error"

    body = {"model": DEFAULT_MODEL, "messages": USER}  # no max_tokens: the SDK would not send it
    r = httpx.post(server.url + "/v1/messages", json=body, timeout=60)
    assert r.status_code == 400
    assert r.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
    }


def _events(response: httpx.Response) -> list[tuple[str, dict]]:
    """``(event name, data)`` of an SSE body in Anthropic's framing."""
    events = []
    for frame in response.text.split("\n\n"):
        if frame:
            name, data = frame.split("\n")
            assert name.startswith("event: ") and data.startswith("data: ")
            events.append((name[len("event: ") :], json.loads(data[len("data: ") :])))
    return events


def test_raw_stream_is_anthropic_framed(server) -> None:
    body = {"model": DEFAULT_MODEL, "max_tokens": 4, "messages": USER, "stream": True, **GREEDY}
    r = httpx.post(server.url + "/v1/messages", json=body, timeout=120)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _events(r)
    assert all(name == data["type"] for name, data in events)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and "input_tokens" in start["usage"]
    assert {data["index"] for name, data in events if name.startswith("content_block")} == {0}
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] in ("end_turn", "max_tokens")
    assert delta["usage"]["output_tokens"] == 4 or delta["delta"]["stop_reason"] == "end_turn"


def test_claude_code_headers_and_beta_query(server) -> None:
    headers = {
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
        "x-api-key": "anything",
    }
    body = {"model": DEFAULT_MODEL, "max_tokens": 2, "messages": USER, **GREEDY}
    r = httpx.post(server.url + "/v1/messages?beta=true", json=body, headers=headers, timeout=60)
    assert r.status_code == 200 and r.json()["type"] == "message"
    r = httpx.post(
        server.url + "/v1/messages/count_tokens?beta=true",
        json={"model": DEFAULT_MODEL, "messages": USER},
        headers=headers,
        timeout=60,
    )
    assert r.status_code == 200 and r.json()["input_tokens"] > 0


def test_a_wrong_key_is_an_authentication_error(seeded_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMITA_API_KEYS", "the-key")
    app = build_app(seeded_store, listen_host="127.0.0.1")
    with serve_app(app) as url:
        with anthropic.Anthropic(base_url=url, api_key="wrong", max_retries=0) as sdk:
            with pytest.raises(anthropic.AuthenticationError) as refused:
                sdk.messages.count_tokens(model=DEFAULT_MODEL, messages=USER)
            assert refused.value.body["error"]["type"] == "authentication_error"
        with anthropic.Anthropic(base_url=url, api_key="the-key", max_retries=0, timeout=120) as sdk:
            assert sdk.messages.count_tokens(model=DEFAULT_MODEL, messages=USER).input_tokens > 0


def test_a_superseded_stream_ends_with_an_error_event(server) -> None:
    """A newer request of the same editor session supersedes a streaming one: ``event: error``
    (499's ``canceled``), never a ``message_stop``; the newer request is answered in full."""
    session = {"X-Llamita-Session": "editor-1"}
    long = {"model": DEFAULT_MODEL, "max_tokens": 400, "messages": LONG, "stream": True, **GREEDY}
    short = {"model": DEFAULT_MODEL, "max_tokens": 2, "messages": USER, **GREEDY}
    with httpx.Client(base_url=server.url, timeout=180) as http:
        with http.stream("POST", "/v1/messages", json=long, headers=session) as first:
            lines = first.iter_lines()
            seen = []
            while "event: content_block_delta" not in seen:  # it is generating now
                seen.append(next(lines))
            newer = http.post("/v1/messages", json=short, headers=session)
            rest = "\n".join(lines)
        assert newer.status_code == 200 and newer.json()["type"] == "message"
    assert "event: message_stop" not in rest
    error = json.loads(rest.split("event: error\ndata: ", 1)[1].split("\n", 1)[0])
    assert error["type"] == "error" and error["error"]["type"] == "canceled"
