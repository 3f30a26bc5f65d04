"""``/v1/responses`` through the official `openai` SDK, on a real server over smollm2:135m."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pydantic
import pytest
from bystanders import Bystanders, default_bystanders

from llamita.server.model.default_model import DEFAULT_MODEL

pytestmark = pytest.mark.model

HELLO = "Say hello in one word."
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


class Answer(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    ok: bool


@pytest.fixture
def client(server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="ollama", max_retries=0, timeout=120) as sdk:
        yield sdk


def test_create(client: openai.OpenAI) -> None:
    reply = client.responses.create(
        model=DEFAULT_MODEL, input=HELLO, instructions="Be brief.", max_output_tokens=8, temperature=0
    )
    assert reply.id.startswith("resp_") and reply.object == "response" and reply.model == DEFAULT_MODEL
    assert reply.output_text and reply.output[-1].type == "message"
    assert reply.instructions == "Be brief." and reply.temperature == 0 and reply.tool_choice == "auto"
    if reply.status == "incomplete":
        assert reply.incomplete_details is not None and reply.incomplete_details.reason == "max_output_tokens"
    else:
        assert reply.status == "completed"
    usage = reply.usage
    assert usage is not None and usage.input_tokens > 0 and 0 < usage.output_tokens <= 8
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


def test_stream_events(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(
            model=DEFAULT_MODEL, input=HELLO, max_output_tokens=8, temperature=0, stream=True
        )
    )
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:-1] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response
    assert {e.response.id for e in events if hasattr(e, "response")} == {final.id}
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text and text == final.output_text and final.usage.output_tokens > 0


def test_stream_helper_and_structured_output(client: openai.OpenAI) -> None:
    """``text.format`` json_schema: the grammar ends the reply, so it completes with valid JSON."""
    with client.responses.stream(
        model=DEFAULT_MODEL, input="Is water wet?", text_format=Answer, max_output_tokens=32, temperature=0
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert final.status == "completed" and "".join(deltas) == final.output_text
    assert isinstance(final.output_parsed, Answer)

    parsed = client.responses.parse(
        model=DEFAULT_MODEL, input="Is fire cold?", text_format=Answer, max_output_tokens=32, temperature=0
    )
    assert isinstance(parsed.output_parsed, Answer)
    assert parsed.text.format.type == "json_schema"


def _said(reply: openai.types.responses.Response) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": reply.output_text}]


def test_previous_response_id_continues_the_conversation(client: openai.OpenAI) -> None:
    """A follow-up's prompt is the one a client resending the conversation gets (same token count)."""
    settings = {"model": DEFAULT_MODEL, "max_output_tokens": 8, "temperature": 0}
    ada, ask = {"role": "user", "content": "My name is Ada."}, {"role": "user", "content": "What is my name?"}
    first = client.responses.create(input="My name is Ada.", instructions="Be brief.", **settings)
    follow = client.responses.create(input="What is my name?", previous_response_id=first.id, **settings)
    resent = client.responses.create(input=[ada, *_said(first), ask], **settings)
    alone = client.responses.create(input=[ask], **settings)
    assert follow.previous_response_id == first.id and follow.instructions is None  # not inherited
    assert follow.usage.input_tokens == resent.usage.input_tokens
    assert follow.usage.input_tokens > alone.usage.input_tokens + first.usage.output_tokens
    assert client.responses.retrieve(follow.id).model_dump() == follow.model_dump()

    again = {"role": "user", "content": "And again?"}
    events = list(
        client.responses.create(input=[again], previous_response_id=follow.id, stream=True, **settings)
    )
    resent = client.responses.create(input=[ada, *_said(first), ask, *_said(follow), again], **settings)
    assert events[-1].response.usage.input_tokens == resent.usage.input_tokens


def test_unstored_responses_cannot_be_continued(client: openai.OpenAI) -> None:
    reply = client.responses.create(model=DEFAULT_MODEL, input=HELLO, max_output_tokens=4, store=False)
    with pytest.raises(openai.NotFoundError) as continued:
        client.responses.create(model=DEFAULT_MODEL, input=HELLO, previous_response_id=reply.id)
    assert continued.value.body["code"] == "previous_response_not_found"
    assert continued.value.body["param"] == "previous_response_id"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(reply.id)


def test_a_function_call_output_round_trip(client: openai.OpenAI) -> None:
    """A client's call and its result go back as input; the model answers from them."""
    reply = client.responses.create(
        model=DEFAULT_MODEL,
        input=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city":"Paris"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "Sunny, 24 C"},
        ],
        tools=[WEATHER],
        max_output_tokens=16,
        temperature=0,
    )
    assert reply.status in ("completed", "incomplete") and reply.output
    assert reply.tools[0].name == "get_weather"


def test_a_forced_tool_call_and_its_answer(client: openai.OpenAI) -> None:
    first = client.responses.create(
        model=DEFAULT_MODEL,
        input="What is the weather in Paris?",
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        max_output_tokens=64,
        temperature=0,
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert calls and calls[0].name == "get_weather" and calls[0].status == "completed"
    assert set(json.loads(calls[0].arguments)) == {"city"}
    second = client.responses.create(
        model=DEFAULT_MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "Sunny"}],
        tools=[WEATHER],
        tool_choice="none",
        max_output_tokens=16,
        temperature=0,
    )
    assert not [item for item in second.output if item.type == "function_call"]


def test_a_forced_tool_call_streams_its_arguments(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(
            model=DEFAULT_MODEL,
            input="Weather in Oslo?",
            tools=[WEATHER],
            tool_choice="required",
            max_output_tokens=64,
            temperature=0,
            stream=True,
        )
    )
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert done and done[0].name == "get_weather" and deltas == done[0].arguments
    assert events[-1].type == "response.completed"


def test_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as unknown:
        client.responses.create(model="nope", input=HELLO)
    assert "not found" in unknown.value.body["message"]
    with pytest.raises(openai.NotFoundError) as previous:
        client.responses.create(model=DEFAULT_MODEL, input=HELLO, previous_response_id="resp_gone")
    assert previous.value.body["message"] == "Previous response with id 'resp_gone' not found."
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(model=DEFAULT_MODEL, input=[{"type": "bogus"}])
    assert bad.value.body["message"] == "input[0]: unknown input item type: 'bogus'"
    with pytest.raises(openai.BadRequestError):
        client.responses.create(
            model=DEFAULT_MODEL, input=HELLO, tool_choice={"type": "function", "name": "x"}
        )
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_gone")


def test_a_client_that_hangs_up_mid_stream_leaves_a_bystander_unchanged(
    server, client: openai.OpenAI
) -> None:
    """A Responses stream dropped after its first text delta: greedy
    bystanders decoding beside it keep their solo output, and the server answers the next call."""
    bystanders = Bystanders(default_bystanders(num_predict=24))
    body = {"model": DEFAULT_MODEL, "input": "Write a long story.", "max_output_tokens": 200, "stream": True}

    async def scenario() -> tuple[list[Any], list[Any]]:
        async with httpx.AsyncClient(timeout=300) as http:
            await bystanders.measure_solo(http, server.url)

            async def hang_up() -> str:
                async with http.stream("POST", server.url + "/v1/responses", json=body) as response:
                    async for line in response.aiter_lines():
                        if line == "event: response.output_text.delta":
                            return line
                return "no delta"

            return await bystanders.run(http, server.url, hang_up)

    replies, (neighbour,) = asyncio.run(scenario())
    assert bystanders.check(replies) == []
    assert neighbour == "event: response.output_text.delta"
    reply = client.responses.create(model=DEFAULT_MODEL, input=HELLO, max_output_tokens=4)
    assert reply.status in ("completed", "incomplete")
