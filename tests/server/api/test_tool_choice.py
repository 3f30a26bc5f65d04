"""``tool_choice`` and ``parallel_tool_calls`` on a real server (smollm2:135m), through the
``openai`` SDK on ``/v1/chat/completions`` and the native ``/api/chat``.

"required" and a named function are enforced by a grammar in the model's own tool-call syntax
(``<tool_call>`` JSON for the embedded ChatML template), so even this tiny model calls, with
arguments that follow the schema; "none" hides the tools.  Bad choices are 400s before the
model runs.  A forced call shares the engine with a greedy bystander, whose output must not change.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import ollama
import openai
import pytest
from bystanders import MODEL, Bystanders, default_bystanders

pytestmark = pytest.mark.model

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Get the current time in a time zone",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string", "enum": ["UTC", "CET", "PST"]}},
            "required": ["zone"],
        },
    },
}
TOOLS = [WEATHER, TIME]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
NUM_PREDICT = 96  # room for one call of either tool, with a few tokens to spare
TIME_CHOICE = {"type": "function", "function": {"name": "get_time"}}


def valid(value: Any, schema: dict[str, Any]) -> bool:
    """The few JSON-schema keywords these tools use (type, enum, properties, required)."""
    kinds = {"object": dict, "string": str, "integer": int, "array": list, "boolean": bool}
    if "type" in schema and not isinstance(value, kinds[schema["type"]]):
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if isinstance(value, dict):
        props = schema.get("properties", {})
        if any(key not in value for key in schema.get("required", [])):
            return False
        return all(valid(v, props[k]) for k, v in value.items() if k in props)
    return True


@pytest.fixture
def client(server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="ollama", max_retries=0, timeout=300) as sdk:
        yield sdk


def _chat(server, **body: Any) -> httpx.Response:
    native_body = {"model": MODEL, "messages": ASK, "stream": False, **body}
    return httpx.post(server.url + "/api/chat", json=native_body, timeout=300)


# ---- /v1/chat/completions through the openai SDK ----------------------------------------------
def test_required_makes_the_model_call_a_tool(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL, messages=ASK, tools=TOOLS, tool_choice="required", temperature=0, max_tokens=NUM_PREDICT
    )
    (choice,) = reply.choices
    assert choice.finish_reason == "tool_calls" and not choice.message.content
    assert choice.message.tool_calls
    for call in choice.message.tool_calls:
        assert call.type == "function" and call.id
        assert valid(json.loads(call.function.arguments), SCHEMAS[call.function.name])


def test_a_named_function_is_the_one_called_streaming(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=ASK,  # about the weather, yet get_time is what must be called
            tools=TOOLS,
            tool_choice=TIME_CHOICE,
            temperature=0,
            max_tokens=NUM_PREDICT,
            stream=True,
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    calls = [call for delta in deltas for call in delta.tool_calls or []]
    (call,) = calls
    assert call.function.name == "get_time"
    assert valid(json.loads(call.function.arguments), SCHEMAS["get_time"])
    finished = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finished == ["tool_calls"]
    assert "".join(d.content or "" for d in deltas) == ""


def test_none_offers_no_tools(client: openai.OpenAI, server) -> None:
    reply = client.chat.completions.create(
        model=MODEL, messages=ASK, tools=TOOLS, tool_choice="none", temperature=0, max_tokens=12
    )
    (choice,) = reply.choices
    assert not choice.message.tool_calls and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    rendered = _chat(server, tools=TOOLS, tool_choice="none", _debug_render_only=True).json()
    offered = _chat(server, tools=TOOLS, _debug_render_only=True).json()
    assert "get_weather" not in rendered["_debug_info"]["rendered_template"]
    assert "get_weather" in offered["_debug_info"]["rendered_template"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param(
            {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "get_stock"}}},
            "tool_choice names the function 'get_stock', which is not among tools",
            id="unknown-function",
        ),
        pytest.param({"tool_choice": "required"}, '"required" needs at least one tool', id="no-tools"),
        pytest.param({"tools": TOOLS, "tool_choice": "always"}, "tool_choice must be", id="unknown-word"),
        pytest.param(
            {"tools": TOOLS, "tool_choice": "required", "response_format": {"type": "json_object"}},
            "cannot be combined with format",
            id="with-format",
        ),
    ],
)
def test_bad_choices_are_400(client: openai.OpenAI, extra: dict[str, Any], message: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=4, **extra)
    assert message in info.value.body["message"]


# ---- native /api/chat ------------------------------------------------------------------------
def test_native_required_serial_is_one_call(server) -> None:
    options = {"temperature": 0, "num_predict": NUM_PREDICT}
    reply = _chat(server, tools=TOOLS, tool_choice="required", parallel_tool_calls=False, options=options)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    (call,) = body["message"]["tool_calls"]
    assert valid(call["function"]["arguments"], SCHEMAS[call["function"]["name"]])
    assert body["message"]["content"] == "" and body["done_reason"] == "stop"


def test_native_errors(server) -> None:
    bad = _chat(server, tools=TOOLS, tool_choice={"type": "function", "function": {"name": "nope"}})
    assert bad.status_code == 400 and "not among tools" in bad.json()["error"]
    with_format = _chat(server, tools=TOOLS, tool_choice=TIME_CHOICE, format="json")
    assert with_format.status_code == 400 and "cannot be combined with format" in with_format.json()["error"]
    serial = _chat(server, tools=TOOLS, parallel_tool_calls="no")
    assert serial.status_code == 400 and serial.json()["error"] == "parallel_tool_calls must be true or false"


# Two calls forced by a `format` (tool_choice stays auto): parallel_tool_calls decides how many return.
TWO_CALLS = {
    "type": "array",
    "minItems": 2,
    "maxItems": 2,
    "items": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "enum": ["get_time"]},
            "arguments": {
                "type": "object",
                "properties": {"zone": {"type": "string", "enum": ["UTC", "CET"]}},
                "required": ["zone"],
                "additionalProperties": False,
            },
        },
        "required": ["name", "arguments"],
        "additionalProperties": False,
    },
}


def test_parallel_false_keeps_the_first_call_under_auto(server) -> None:
    options = {"temperature": 0, "num_predict": 64}
    both = _chat(server, tools=TOOLS, format=TWO_CALLS, options=options).json()
    first = _chat(server, tools=TOOLS, format=TWO_CALLS, parallel_tool_calls=False, options=options).json()
    assert len(both["message"]["tool_calls"]) == 2, both
    assert first["message"]["tool_calls"] == [
        {**both["message"]["tool_calls"][0], "id": first["message"]["tool_calls"][0]["id"]}
    ]
    assert first["message"]["content"] == ""


# A chat template with no tool syntax at all.
PLAIN_TEMPLATE = """{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"""


def test_a_model_without_tools_refuses_a_forced_call(server) -> None:
    client = ollama.Client(host=server.url)
    try:
        client.create(model="plain", from_=MODEL, template=PLAIN_TEMPLATE)
    finally:
        client.close()
    forced = _chat(server, model="plain", tools=TOOLS, tool_choice="required")
    assert forced.status_code == 400 and forced.json()["error"].endswith("does not support tools")
    # "none" offers no tools, so such a model can still answer
    hidden = _chat(server, model="plain", tools=TOOLS, tool_choice="none", options={"num_predict": 2})
    assert hidden.status_code == 200 and "tool_calls" not in hidden.json()["message"]


# ---- a forced call beside a greedy bystander -------------------------------------------------
def test_a_forced_call_leaves_a_bystander_unchanged(server) -> None:
    bystanders = Bystanders(default_bystanders(num_predict=24))
    forced = {
        "model": MODEL,
        "messages": ASK,
        "tools": TOOLS,
        "tool_choice": TIME_CHOICE,
        "stream": False,
        "options": {"temperature": 0, "num_predict": NUM_PREDICT},
    }

    async def scenario() -> tuple[list[Any], list[Any]]:
        async with httpx.AsyncClient(timeout=300) as http:
            await bystanders.measure_solo(http, server.url)

            async def neighbour() -> httpx.Response:
                return await http.post(server.url + "/api/chat", json=forced)

            return await bystanders.run(http, server.url, neighbour)

    replies, (reply,) = asyncio.run(scenario())
    assert bystanders.check(replies) == []
    assert reply.status_code == 200, reply.text
    (call,) = reply.json()["message"]["tool_calls"]
    assert call["function"]["name"] == "get_time"
    assert valid(call["function"]["arguments"], SCHEMAS["get_time"])
