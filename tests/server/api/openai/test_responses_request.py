"""Responses request bodies → native chat bodies: input items, tools, tool_choice, formats, errors."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from llamita.server.api.errors import APIError
from llamita.server.api.openai.responses_request import from_responses_request, previous_response_id

MODEL = "smollm2:135m"
PNG = base64.b64encode(b"\x89PNG fake").decode()
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}


def native(**body: Any) -> dict[str, Any]:
    return from_responses_request({"model": MODEL, **body}).native


def refused(**body: Any) -> str:
    with pytest.raises(APIError) as info:
        from_responses_request({"model": MODEL, **body})
    assert info.value.status == 400
    return str(info.value)


def test_a_string_input_is_one_user_message_with_the_instructions_as_system() -> None:
    body = native(input="hi", instructions="Be brief.")
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert body["model"] == MODEL and body["stream"] is False
    assert body["options"] == {"temperature": 1.0}  # OpenAI's default, as Ollama sends it
    assert not {"tools", "tool_choice", "format", "think", "truncate"} & body.keys()


def test_message_items_roles_and_parts() -> None:
    body = native(
        input=[
            {"role": "developer", "content": "Rules."},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"}]},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "look "},
                    {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"},
                    {"type": "input_text", "text": "here"},
                ],
            },
            {"role": "assistant", "content": [{"type": "output_text", "text": "ok", "annotations": []}]},
        ]
    )
    assert body["messages"] == [
        {"role": "system", "content": "Rules."},
        {"role": "user", "content": "a"},
        {"role": "user", "content": "look here", "images": [PNG]},
        {"role": "assistant", "content": "ok"},
    ]


def test_a_function_call_round_trip_becomes_tool_calls_and_a_tool_message() -> None:
    call = native(
        input=[
            {"role": "user", "content": "weather?"},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "need a tool"}]},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Checking."}],
            },
            {
                "type": "function_call",
                "call_id": "c1",
                "name": "get_weather",
                "arguments": '{"city":"Paris"}',
            },
            {"type": "function_call", "call_id": "c2", "name": "get_weather", "arguments": ""},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {
                "type": "function_call_output",
                "call_id": "c2",
                "output": [{"type": "input_text", "text": "rain"}],
            },
        ],
        tools=[WEATHER],
    )
    assert call["messages"][1:] == [
        {
            "role": "assistant",
            "content": "Checking.",
            "thinking": "need a tool",
            "tool_calls": [
                {"id": "c1", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                {"id": "c2", "function": {"name": "get_weather", "arguments": {}}},
            ],
        },
        {"role": "tool", "content": "sunny", "tool_call_id": "c1", "tool_name": "get_weather"},
        {"role": "tool", "content": "rain", "tool_call_id": "c2", "tool_name": "get_weather"},
    ]
    assert call["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": WEATHER["parameters"],
                "description": "The weather in a city.",
            },
        }
    ]


def test_history_comes_first_and_names_earlier_calls() -> None:
    history = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c9", "function": {"name": "f", "arguments": {}}}],
        },
    ]
    call = from_responses_request(
        {"model": MODEL, "input": [{"type": "function_call_output", "call_id": "c9", "output": "x"}]}, history
    )
    assert call.native["messages"] == [
        *history,
        {"role": "tool", "content": "x", "tool_call_id": "c9", "tool_name": "f"},
    ]
    assert call.messages == call.native["messages"]


def test_tool_choice_and_parallel_tool_calls_take_the_native_contract_shape() -> None:
    assert native(input="x", tools=[WEATHER], tool_choice="required")["tool_choice"] == "required"
    assert native(input="x", tools=[WEATHER], tool_choice="none")["tool_choice"] == "none"
    named = native(input="x", tools=[WEATHER], tool_choice={"type": "function", "name": "get_weather"})
    assert named["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert native(input="x", tools=[WEATHER], parallel_tool_calls=False)["parallel_tool_calls"] is False
    assert "parallel_tool_calls" not in native(input="x", tools=[WEATHER])


def test_allowed_tools_narrows_the_tools() -> None:
    other = {**WEATHER, "name": "other"}
    choice = {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "other"}]}
    body = native(input="x", tools=[WEATHER, other], tool_choice=choice)
    assert body["tool_choice"] == "required"
    assert [t["function"]["name"] for t in body["tools"]] == ["other"]


def test_built_in_tools_are_not_offered_and_namespaces_expand() -> None:
    namespace = {"type": "namespace", "name": "fs", "tools": [{"type": "function", "name": "read"}]}
    body = native(
        input="x", tools=[{"type": "web_search"}, {"type": "custom", "name": "apply_patch"}, namespace]
    )
    assert [t["function"]["name"] for t in body["tools"]] == ["fs.read"]


def test_text_format_reasoning_and_limits() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    fmt = {"type": "json_schema", "name": "thing", "schema": schema, "strict": True}
    body = native(
        input="x",
        text={"format": fmt, "verbosity": "low"},
        reasoning={"effort": "high", "summary": "auto"},
        max_output_tokens=16,
        temperature=0,
        top_p=0.5,
        truncation="auto",
    )
    assert body["format"] == schema and body["think"] == "high" and body["truncate"] is True
    assert body["options"] == {"temperature": 0, "top_p": 0.5, "num_predict": 16}
    assert native(input="x", text={"format": {"type": "json_object"}})["format"] == "json"
    assert "format" not in native(input="x", text={"format": {"type": "text"}})
    assert native(input="x", reasoning={"effort": "none"})["think"] is False


def test_settings_echo_the_request_with_openai_defaults() -> None:
    call = from_responses_request({"model": MODEL, "input": "x", "store": False, "metadata": {"k": "v"}})
    settings = call.settings
    assert (settings["tool_choice"], settings["parallel_tool_calls"], settings["tools"]) == ("auto", True, [])
    assert (settings["temperature"], settings["top_p"], settings["truncation"]) == (1.0, 1.0, "disabled")
    assert settings["text"] == {"format": {"type": "text"}} and settings["metadata"] == {"k": "v"}
    assert call.store is False and call.stream is False


def test_codex_fields_are_accepted() -> None:
    """What Codex CLI sends (codex-rs ResponsesApiRequest) runs, its extra fields ignored."""
    call = from_responses_request(
        {
            "model": MODEL,
            "instructions": "You are Codex.",
            "input": [
                {
                    "type": "message",
                    "role": "developer",
                    "content": [{"type": "input_text", "text": "sandbox"}],
                },
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix it"}]},
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "summary": [],
                    "content": None,
                    "encrypted_content": None,
                },
                {
                    "type": "function_call",
                    "status": "completed",
                    "id": "fc_0",
                    "name": "shell",
                    "arguments": '{"cmd":"ls"}',
                    "call_id": "call_0",
                },
                {"type": "function_call_output", "id": "fco_1", "call_id": "call_0", "output": "a.txt"},
            ],
            "tools": [
                {
                    "type": "function",
                    "name": "shell",
                    "description": "Run",
                    "strict": False,
                    "parameters": {},
                },
                {"type": "local_shell"},
                {"type": "web_search", "external_web_access": False},
            ],
            "tool_choice": "auto",
            "parallel_tool_calls": False,
            "reasoning": {"effort": "medium", "summary": "auto"},
            "store": False,
            "stream": True,
            "include": ["reasoning.encrypted_content"],
            "service_tier": None,
            "prompt_cache_key": "thread-1",
            "text": {"verbosity": "medium"},
            "client_metadata": {"x": "y"},
        }
    )
    assert call.stream and not call.store and call.native["tool_choice"] == "auto"
    assert [t["function"]["name"] for t in call.native["tools"]] == ["shell"]
    assert [m["role"] for m in call.native["messages"]] == ["system", "system", "user", "assistant", "tool"]
    assert call.native["messages"][-1] == {
        "role": "tool",
        "content": "a.txt",
        "tool_call_id": "call_0",
        "tool_name": "shell",
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"input": 5}, "'input' must be a string or an array of input items"),
        ({"input": []}, "'input' is required"),
        ({"input": [{"type": "bogus"}]}, "input[0]: unknown input item type: 'bogus'"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0]: role must be one of"),
        ({"input": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "unknown content type"),
        ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}, "file inputs"),
        (
            {"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{"}]},
            "not valid JSON",
        ),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "needs a 'call_id'"),
        ({"input": "x", "tools": [{"type": "function"}]}, "tools[0]: a function tool needs a 'name'"),
        ({"input": "x", "tools": {}}, "invalid type for 'tools' field"),
        ({"input": "x", "tool_choice": "any"}, "tool_choice must be"),
        (
            {"input": "x", "tool_choice": {"type": "function", "name": "nope"}},
            "not one of the function tools",
        ),
        ({"input": "x", "tool_choice": {"type": "web_search_preview"}}, "is not supported"),
        ({"input": "x", "text": {"format": {"type": "json_schema"}}}, "text.format.schema"),
        ({"input": "x", "reasoning": {"effort": "huge"}}, "invalid reasoning value"),
        ({"input": "x", "max_output_tokens": "9"}, "invalid type for 'max_output_tokens' field"),
        ({"input": "x", "temperature": True}, "invalid type for 'temperature' field"),
        ({"input": "x", "stream": "yes"}, "invalid type for 'stream' field"),
        ({"input": "x", "truncation": "middle"}, "truncation must be"),
        ({"input": "x", "background": True}, "background responses are not supported"),
        ({"input": "x", "previous_response_id": 3}, "invalid type for 'previous_response_id' field"),
        ({"input": "x", "instructions": 5}, "invalid type for 'instructions' field"),
        ({"input": "x", "metadata": []}, "invalid type for 'metadata' field"),
        ({"input": "x", "parallel_tool_calls": "no"}, "invalid type for 'parallel_tool_calls' field"),
        ({"input": "x", "model": 5}, "invalid type for 'model' field"),
        ({"input": "x", "conversation": "conv_1"}, "conversations are not supported"),
    ],
)
def test_bad_requests_are_400(body: dict[str, Any], message: str) -> None:
    assert message in refused(**body)


def test_previous_response_id() -> None:
    assert previous_response_id({"previous_response_id": "resp_1"}) == "resp_1"
    assert previous_response_id({"previous_response_id": ""}) is None
    assert previous_response_id({}) is None
