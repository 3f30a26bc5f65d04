"""Tool-call parsing: the syntax inferred from each family's template, and streamed parsing."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import ollama
import pytest
from tooltemplates import LLAMA31, MISTRAL, PYTHON_TAG, QWEN

from llamita.server.api.inference import merge as _merge
from llamita.server.prompt.tools import ToolParser, chat_messages, closing_text, tool_call_tag
from llamita.server.template import Template, parse


def _tool(name: str, **properties: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name} tool",
            "parameters": {
                "type": "object",
                "properties": {k: {"type": v} for k, v in properties.items()},
                "required": list(properties),
            },
        },
    }


TOOLS = [
    _tool("get_weather", city="string"),
    _tool("get_time", zone="string"),
    _tool("say_hello"),
    _tool("say_hello_world"),
]

# ---- the syntax, from the template -------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "tag", "closing"),
    [
        pytest.param("", "{", "", id="empty"),
        pytest.param("{{ .Prompt }}", "{", "", id="no-tool-calls"),
        pytest.param("{{if .ToolCalls}}{{end}}", "{", "", id="empty-branch"),
        pytest.param("{{if .ToolCalls}}{{range .ToolCalls}}{{ . }}{{end}}{{end}}", "{", "", id="no-text"),
        pytest.param(
            '{{if .ToolCalls}}{{range .ToolCalls}}{"name": "{{.Function.Name}}"}{{end}}{{end}}',
            "{",
            "",
            id="bare-json",
        ),
        pytest.param(
            '{{if .ToolCalls}}{{range .ToolCalls}}\r\n{"name": "{{.Function.Name}}"}{{end}}{{end}}',
            "{",
            "",
            id="bare-json-crlf",
        ),
        pytest.param("{{if .ToolCalls}}\n [ {{range .ToolCalls}}{{ . }}{{end}}]{{end}}", "[", "]", id="list"),
        pytest.param(
            "{{if .ToolCalls}}{{range .ToolCalls}}{{ . }}{{end}}]{{end}}", "{", "]", id="trailing-only"
        ),
        pytest.param(
            "{{if .ToolCalls}}{{range .ToolCalls}}"
            '<tool_call>{"name": "{{.Function.Name}}"}</tool_call>{{end}}{{end}}',
            "<tool_call>",
            "</tool_call>",
            id="tag-inside-range",
        ),
        pytest.param(
            "{{if .ToolCalls}}First text{{if .Something}}inner{{end}}Second text{{end}}",
            "First text",
            "Second text",
            id="first-text-wins",
        ),
        pytest.param("{{if .ToolCalls}}{{ .Content }}<x>{{end}}", "{", "<x>", id="action-before-text"),
        pytest.param(
            "{{if .ToolCalls}}Action: ```json{{end}}", "Action: ```json", "Action: ```json", id="fence"
        ),
        pytest.param(
            "{{range .Messages}}{{if $.ToolCalls}}<call>{{end}}{{end}}", "<call>", "<call>", id="variable"
        ),
        pytest.param(
            "{{if .Content}}{{.Content}}{{else}}{{if .ToolCalls}}<tc>{{end}}{{end}}",
            "<tc>",
            "<tc>",
            id="else",
        ),
    ],
)
def test_tag_and_closing_text(source: str, tag: str, closing: str) -> None:
    template = parse(source)
    assert tool_call_tag(template) == tag
    assert closing_text(template) == closing


@pytest.mark.parametrize(
    ("template", "tag", "closing"),
    [
        pytest.param(QWEN, "<tool_call>", "</tool_call>", id="qwen2.5"),
        pytest.param(LLAMA31, "{", "", id="llama3.1"),
        pytest.param(MISTRAL, "[TOOL_CALLS] [", "]</s>", id="mistral"),
        pytest.param(PYTHON_TAG, "<|python_tag|>", "<|eom_id|>", id="python-tag"),
    ],
)
def test_family_templates(template: Template, tag: str, closing: str) -> None:
    # Qwen's system prompt also shows "<tool_call>": only the .ToolCalls branch counts.
    assert "tools" in template.vars()
    assert tool_call_tag(template) == tag
    assert closing_text(template) == closing


def test_without_template_json_is_the_syntax() -> None:
    parser = ToolParser(None, TOOLS)
    assert parser.tag == "{"
    assert (
        parser.feed('{"name": "get_time", "arguments": {"zone": "UTC"}}')[1][0]["function"]["name"]
        == "get_time"
    )


# ---- parsing -----------------------------------------------------------------------------
W_PARIS = ("get_weather", {"city": "Paris"})
W_TOKYO = ("get_weather", {"city": "Tokyo"})
T_UTC = ("get_time", {"zone": "UTC"})


def _qwen_call(name: str, arguments: str) -> str:
    return f'<tool_call>\n{{"name": "{name}", "arguments": {arguments}}}\n</tool_call>'


QWEN_PARIS = _qwen_call("get_weather", '{"city": "Paris"}')
QWEN_UNKNOWN = _qwen_call("search", '{"query": "Paris"}')
LLAMA_PARIS = '{"name": "get_weather", "parameters": {"city": "Paris"}}'
LLAMA_UTC = '{"name": "get_time", "parameters": {"zone": "UTC"}}'

CASES = [
    # Qwen / Hermes: <tool_call> ... </tool_call>
    pytest.param(QWEN, "Hello, how can I help?", "Hello, how can I help?", [], id="qwen-prose"),
    pytest.param(QWEN, "", "", [], id="qwen-empty"),
    pytest.param(QWEN, QWEN_PARIS, "", [W_PARIS], id="qwen-call"),
    pytest.param(QWEN, "Let me check. " + QWEN_PARIS, "Let me check. ", [W_PARIS], id="qwen-content-before"),
    pytest.param(
        QWEN,
        QWEN_PARIS + "\n" + _qwen_call("get_time", '{"zone": "UTC"}'),
        "",
        [W_PARIS, T_UTC],
        id="qwen-two-calls",
    ),
    pytest.param(
        QWEN,
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
        '{"name": "get_weather", "arguments": {"city": "Tokyo"}}\n</tool_call>',
        "",
        [W_PARIS, W_TOKYO],
        id="qwen-two-in-one-tag",
    ),
    pytest.param(QWEN, "\n" + QWEN_PARIS, "", [W_PARIS], id="qwen-blank-before-tag"),
    pytest.param(QWEN, LLAMA_PARIS.replace("parameters", "arguments"), "", [W_PARIS], id="qwen-bare-json"),
    pytest.param(
        QWEN, '{"a": 1} then ' + QWEN_PARIS, '{"a": 1} then ', [W_PARIS], id="qwen-json-prose-then-tag"
    ),
    pytest.param(QWEN, QWEN_UNKNOWN, QWEN_UNKNOWN, [], id="qwen-unknown-tool"),
    pytest.param(
        QWEN,
        QWEN_UNKNOWN + "\n" + QWEN_PARIS,
        QWEN_UNKNOWN + "\n",
        [W_PARIS],
        id="qwen-unknown-then-known",
    ),
    pytest.param(
        QWEN,
        QWEN_PARIS + "\n" + QWEN_UNKNOWN,
        QWEN_UNKNOWN,
        [W_PARIS],
        id="qwen-known-then-unknown",
    ),
    pytest.param(
        QWEN,
        _qwen_call("get_weather", "{city: Paris}"),
        _qwen_call("get_weather", "{city: Paris}"),
        [],
        id="qwen-malformed-json",
    ),
    pytest.param(
        QWEN,
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Par',
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Par',
        [],
        id="qwen-unfinished",
    ),
    pytest.param(
        QWEN, "I print <tool_call> tags.", "I print <tool_call> tags.", [], id="qwen-tag-without-json"
    ),
    pytest.param(QWEN, "if a <b and c> d: <tool_", "if a <b and c> d: <tool_", [], id="qwen-partial-tag"),
    pytest.param(
        QWEN,
        _qwen_call("get_weather", '"{\\"city\\": \\"Paris\\"}"'),
        "",
        [W_PARIS],
        id="qwen-arguments-as-string",
    ),
    pytest.param(
        QWEN,
        '<tool_call>{"arguments": {"city": "Paris"}, "name": "get_weather"}</tool_call>',
        "",
        [W_PARIS],
        id="qwen-arguments-first",
    ),
    pytest.param(
        QWEN,
        _qwen_call("say_hello", "{}") + _qwen_call("say_hello_world", "{}"),
        "",
        [("say_hello", {}), ("say_hello_world", {})],
        id="qwen-name-prefix-of-another",
    ),
    pytest.param(
        QWEN, '<tool_call>{"name": "say_hello"}</tool_call>', "", [("say_hello", {})], id="qwen-no-arguments"
    ),
    pytest.param(
        QWEN,
        _qwen_call("get_weather", '{"city": "Pa}ris \\"x"}'),
        "",
        [("get_weather", {"city": 'Pa}ris "x'})],
        id="qwen-braces-in-strings",
    ),
    pytest.param(
        QWEN,
        _qwen_call("get_weather", '["Paris"]'),
        _qwen_call("get_weather", '["Paris"]'),
        [],
        id="qwen-arguments-not-an-object",
    ),
    pytest.param(QWEN, QWEN_PARIS + "\nDone, I asked.", "Done, I asked.", [W_PARIS], id="qwen-prose-after"),
    # Llama 3.x: bare JSON, only when the reply starts with it
    pytest.param(LLAMA31, LLAMA_PARIS, "", [W_PARIS], id="llama-call"),
    pytest.param(LLAMA31, "\n\n" + LLAMA_PARIS, "", [W_PARIS], id="llama-leading-blank"),
    pytest.param(LLAMA31, " \n ", " \n ", [], id="llama-only-blank"),
    pytest.param(LLAMA31, LLAMA_PARIS + "; " + LLAMA_UTC, "", [W_PARIS, T_UTC], id="llama-two-calls"),
    pytest.param(LLAMA31, f"[{LLAMA_PARIS}, {LLAMA_UTC}]", "", [W_PARIS, T_UTC], id="llama-list-of-calls"),
    pytest.param(LLAMA31, "Sure: " + LLAMA_PARIS, "Sure: " + LLAMA_PARIS, [], id="llama-prose-first"),
    pytest.param(LLAMA31, '{"answer": 42}', '{"answer": 42}', [], id="llama-json-not-a-call"),
    pytest.param(
        LLAMA31,
        '{"name": "search", "parameters": {"q": "x"}}',
        '{"name": "search", "parameters": {"q": "x"}}',
        [],
        id="llama-unknown-tool",
    ),
    pytest.param(
        LLAMA31,
        '{"name": "get_weather", "parameters": {"city": Paris}}',
        '{"name": "get_weather", "parameters": {"city": Paris}}',
        [],
        id="llama-malformed-json",
    ),
    pytest.param(
        LLAMA31,
        '{"name": "jeff"}' + LLAMA_PARIS,
        '{"name": "jeff"}' + LLAMA_PARIS,
        [],
        id="llama-first-object-decides",
    ),
    pytest.param(LLAMA31, "[special delivery]", "[special delivery]", [], id="llama-brackets-prose"),
    pytest.param(LLAMA31, "for { x() }", "for { x() }", [], id="llama-code"),
    pytest.param(LLAMA31, LLAMA_PARIS + "\nAsked.", "Asked.", [W_PARIS], id="llama-prose-after"),
    pytest.param(
        LLAMA31,
        '{"type": "function", "function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}}',
        "",
        [W_PARIS],
        id="llama-openai-shape",
    ),
    pytest.param(LLAMA31, '{"get_weather": {"city": "Paris"}}', "", [W_PARIS], id="llama-name-as-key"),
    # Mistral: [TOOL_CALLS] [ ... ]
    pytest.param(
        MISTRAL,
        f'[TOOL_CALLS] [{{"name": "get_weather", "arguments": {{"city": "Paris"}}}}, {LLAMA_UTC}]',
        "",
        [W_PARIS, T_UTC],
        id="mistral-two-calls",
    ),
    pytest.param(
        MISTRAL,
        '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Tokyo"}}]',
        "",
        [W_TOKYO],
        id="mistral-no-space",
    ),
    pytest.param(
        MISTRAL,
        'Checking. [TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Tokyo"}}]</s>',
        "Checking. ",
        [W_TOKYO],
        id="mistral-content-before",
    ),
    pytest.param(
        MISTRAL,
        '[TOOL_CALLS] [{"name": "search", "arguments": {}}]',
        '[TOOL_CALLS] [{"name": "search", "arguments": {}}]',
        [],
        id="mistral-unknown-tool",
    ),
    pytest.param(MISTRAL, "[1, 2, 3] [TOOL", "[1, 2, 3] [TOOL", [], id="mistral-brackets-prose"),
    pytest.param(
        MISTRAL,  # [TOOL_CALLS] is a control token, which the engine renders as nothing
        ' [{"name": "get_weather", "arguments": {"city": "Tokyo"}}]',
        "",
        [W_TOKYO],
        id="mistral-tag-not-rendered",
    ),
    # Llama with <|python_tag|>
    pytest.param(
        PYTHON_TAG, "<|python_tag|>" + LLAMA_PARIS + "<|eom_id|>", "", [W_PARIS], id="python-tag-call"
    ),
    pytest.param(PYTHON_TAG, LLAMA_PARIS, "", [W_PARIS], id="python-tag-not-rendered"),
    pytest.param(
        PYTHON_TAG,
        '<|python_tag|>brave_search.call(query="x")',
        '<|python_tag|>brave_search.call(query="x")',
        [],
        id="python-tag-builtin-tool",
    ),
]

ID = re.compile(r"call_[a-z0-9]{8}")


def _run(template: Template, pieces: list[str]) -> tuple[str, list[dict[str, Any]]]:
    parser = ToolParser(template, TOOLS)
    content: list[str] = []
    calls: list[dict[str, Any]] = []
    for piece in pieces:
        text, found = parser.feed(piece)
        content.append(text)
        calls.extend(found)
    text, found = parser.flush()
    return "".join(content) + text, calls + found


def _shape(calls: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    for index, call in enumerate(calls):
        assert ID.fullmatch(call["id"]), call
        assert call["function"]["index"] == index
    return [(c["function"]["name"], c["function"]["arguments"]) for c in calls]


@pytest.mark.parametrize(("template", "text", "content", "calls"), CASES)
def test_parse(template: Template, text: str, content: str, calls: list[Any]) -> None:
    got_content, got_calls = _run(template, [text])
    assert got_content == content
    assert _shape(got_calls) == calls


@pytest.mark.parametrize(("template", "text", "content", "calls"), CASES)
def test_any_split_gives_the_same_result(
    template: Template, text: str, content: str, calls: list[Any]
) -> None:
    splits = [[text[:i], text[i:]] for i in range(len(text) + 1)] + [list(text)]
    for pieces in splits:
        got_content, got_calls = _run(template, pieces)
        assert (got_content, _shape(got_calls)) == (content, calls), pieces


def test_content_streams_and_only_a_possible_call_is_held() -> None:
    parser = ToolParser(QWEN, TOOLS)
    assert parser.feed("Let me ") == ("Let me ", [])
    assert parser.feed("check <tool_") == ("check ", [])  # could be the tag
    assert parser.feed('call>\n{"name": "get_weather", ') == ("", [])
    content, calls = parser.feed('"arguments": {"city": "Paris"}}\n</tool_call>')
    assert content == "" and _shape(calls) == [W_PARIS]
    assert parser.flush() == ("", [])

    llama = ToolParser(LLAMA31, TOOLS)
    assert llama.feed("\n") == ("", [])  # blank text before a call is no content
    assert llama.feed('{"name": "get_weather"') == ("", [])
    assert llama.feed(', "parameters": {}}')[1][0]["function"] == {
        "index": 0,
        "name": "get_weather",
        "arguments": {},
    }
    prose = ToolParser(LLAMA31, TOOLS)
    assert prose.feed("Hi") == ("Hi", [])
    assert prose.feed(' {"name": "get_weather", "parameters": {}}') == (
        ' {"name": "get_weather", "parameters": {}}',
        [],
    )


def test_only_requested_tools_count() -> None:
    parser = ToolParser(QWEN, [_tool("get_time", zone="string"), {"type": "function"}, "junk"])
    assert parser.names == frozenset({"get_time"})
    assert _run(QWEN, [QWEN_PARIS])[1]  # requested in TOOLS
    text, calls = parser.feed(QWEN_PARIS)
    assert calls == [] and text + parser.flush()[0] == QWEN_PARIS


def test_ids_are_fresh_and_indexes_count_across_blocks() -> None:
    _, calls = _run(QWEN, [QWEN_PARIS + "Then " + QWEN_PARIS + _qwen_call("get_time", '{"zone": "UTC"}')])
    assert [c["function"]["index"] for c in calls] == [0, 1, 2]
    assert len({c["id"] for c in calls}) == 3


def test_chat_messages_put_calls_in_their_own_chunk() -> None:
    call = {"id": "call_abcdefgh", "function": {"index": 0, "name": "get_weather", "arguments": {}}}
    assert chat_messages("", []) == []
    assert chat_messages("Hi", [call]) == [
        {"role": "assistant", "content": "Hi"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
    ]


def test_non_stream_merge_concatenates_tool_calls() -> None:
    first = {"id": "call_aaaaaaaa", "function": {"index": 0, "name": "a", "arguments": {}}}
    second = {"id": "call_bbbbbbbb", "function": {"index": 1, "name": "b", "arguments": {"x": 1}}}
    chunks = [
        {"message": {"role": "assistant", "content": "Sure. "}, "done": False},
        {"message": {"role": "assistant", "content": "", "tool_calls": [first]}, "done": False},
        {"message": {"role": "assistant", "content": "", "tool_calls": [second]}, "done": False},
        {"message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop"},
    ]
    merged = _merge(chunks, "message")
    assert merged["message"] == {"role": "assistant", "content": "Sure. ", "tool_calls": [first, second]}
    assert merged["done_reason"] == "stop"
    plain = _merge([chunks[0], chunks[-1]], "message")
    assert "tool_calls" not in plain["message"]


# ---- end to end on SmolLM2 ---------------------------------------------------------------
# A ChatML template for SmolLM2 with Llama-3.1-style tool calls (bare JSON), so a reply that
# is a JSON call object (forced below with a JSON-schema `format`) parses as a tool call.
SMOL_TOOLS_TEMPLATE = """{{- if .Tools }}<|im_start|>system
You can call these tools. To call one, reply with {"name": <tool name>, "arguments": <object>}.
{{- range .Tools }}
{{ json .Function }}
{{- end }}<|im_end|>
{{ end }}
{{- range .Messages }}<|im_start|>{{ .Role }}
{{ if .ToolCalls }}
{{- range .ToolCalls }}{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}
{{- end }}{{ else }}{{ .Content }}{{ end }}<|im_end|>
{{ end }}<|im_start|>assistant
"""

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city"}},
            "required": ["city"],
        },
    },
}

FORCED_CALL = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "enum": ["get_weather"]},
        "arguments": {
            "type": "object",
            "properties": {"city": {"type": "string", "enum": ["Paris", "London"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "arguments"],
    "additionalProperties": False,
}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture
def tools_model(server) -> str:
    client = ollama.Client(host=server.url)
    try:
        done = client.create(model="smol-tools", from_="smollm2:135m", template=SMOL_TOOLS_TEMPLATE)
        assert done.status == "success"
    finally:
        client.close()
    return "smol-tools"


@pytest.mark.model
def test_chat_with_tools_renders_and_is_accepted(server, tools_model: str) -> None:
    show = httpx.post(server.url + "/api/show", json={"model": tools_model}).json()
    assert "tools" in show["capabilities"]
    body = {"model": tools_model, "messages": ASK, "tools": [WEATHER], "stream": False}
    rendered = httpx.post(server.url + "/api/chat", json={**body, "_debug_render_only": True}).json()
    text = rendered["_debug_info"]["rendered_template"]
    assert '"name":"get_weather"' in text and "Get the current weather for a city" in text
    assert text.endswith("What is the weather in Paris?<|im_end|>\n<|im_start|>assistant\n")
    reply = httpx.post(
        server.url + "/api/chat", json={**body, "options": {"temperature": 0, "num_predict": 8}}, timeout=120
    )
    assert reply.status_code == 200 and reply.json()["done"] is True


@pytest.mark.model
def test_forced_json_call_becomes_tool_calls(server, tools_model: str) -> None:
    client = ollama.Client(host=server.url)
    try:
        options = {"temperature": 0, "num_predict": 64}
        reply = client.chat(
            model=tools_model, messages=ASK, tools=[WEATHER], format=FORCED_CALL, options=options
        )
        assert reply.message.content == ""
        assert reply.done_reason == "stop"
        (call,) = reply.message.tool_calls
        assert call.function.name == "get_weather" and call.function.arguments["city"] in ("Paris", "London")

        chunks = list(
            client.chat(
                model=tools_model,
                messages=ASK,
                tools=[WEATHER],
                format=FORCED_CALL,
                options=options,
                stream=True,
            )
        )
    finally:
        client.close()
    with_calls = [c for c in chunks if c.message.tool_calls]
    assert len(with_calls) == 1 and not with_calls[0].done and chunks[-1].done
    assert with_calls[0].message.tool_calls[0].function.arguments == call.function.arguments
    assert "".join(c.message.content or "" for c in chunks) == ""

    # Without tools the same forced output is plain content.
    raw = httpx.post(
        server.url + "/api/chat",
        json={
            "model": tools_model,
            "messages": ASK,
            "format": FORCED_CALL,
            "options": options,
            "stream": False,
        },
        timeout=120,
    ).json()
    assert (
        json.loads(raw["message"]["content"])["name"] == "get_weather" and "tool_calls" not in raw["message"]
    )

    # The OpenAI layer sees the call too.
    completion = httpx.post(
        server.url + "/v1/chat/completions",
        json={
            "model": tools_model,
            "messages": ASK,
            "tools": [WEATHER],
            "temperature": 0,
            "max_tokens": 64,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "call", "schema": FORCED_CALL},
            },
        },
        timeout=120,
    ).json()
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
