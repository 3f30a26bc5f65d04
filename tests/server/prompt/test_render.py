"""Ollama's prompt rendering: golden templates, the three execute modes and request assembly.

Golden files live in ``testdata/<template>.gotmpl`` and ``testdata/<template>/<case>.txt``; run
with ``LLAMITA_UPDATE_GOLDEN=1`` to rewrite the expected files after an intended change (and review
the diff: the expected outputs were cross-checked against Go's text/template when written).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from llamita.server.prompt.render import (
    chat_prompt_messages,
    collate,
    generate_messages,
    messages_from,
    render_generate,
    render_prompt,
    tag_images,
    think_values,
)
from llamita.server.template import parse

TESTDATA = Path(__file__).parent / "testdata"

USER = [{"role": "user", "content": "Hello, who are you?"}]
MULTI_TURN = [
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
]
WITH_SYSTEM = [{"role": "system", "content": "Answer in one word."}, *MULTI_TURN]
PREFILL = [
    {"role": "user", "content": "Write a haiku about tea."},
    {"role": "assistant", "content": "Steam curls"},
]
CONSECUTIVE = [{"role": "user", "content": "Part one."}, {"role": "user", "content": "Part two."}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file from the workspace",
            "parameters": {
                "type": "object",
                "required": ["path"],
                "properties": {
                    "path": {"type": "string", "description": "Path relative to the workspace root"},
                    "max_lines": {"type": "integer", "description": "Stop after this many lines"},
                },
            },
        },
    }
]
TOOL_TURNS = [
    {"role": "system", "content": "You are a code reviewer."},
    {"role": "user", "content": "What does main.py print?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"function": {"name": "read_file", "arguments": {"path": "main.py", "max_lines": 20}}}
        ],
    },
    {"role": "tool", "content": "print('hi')", "tool_name": "read_file"},
]
FIM = {"prompt": "def add(a, b):\n    ", "suffix": "\n\nprint(add(1, 2))\n"}
CHAT_CASES: dict[str, dict[str, Any]] = {
    "user": {"messages": USER},
    "user-assistant-user": {"messages": MULTI_TURN},
    "system-user-assistant-user": {"messages": WITH_SYSTEM},
    "assistant-prefill": {"messages": PREFILL},
    "consecutive-users": {"messages": CONSECUTIVE},
}

# template name -> case name -> keyword arguments for render_prompt
GOLDEN: dict[str, dict[str, dict[str, Any]]] = {
    "chatml": CHAT_CASES,
    "llama3-instruct": CHAT_CASES,
    "mistral-instruct": CHAT_CASES,
    "gemma-instruct": CHAT_CASES,
    "phi-3": CHAT_CASES,
    "codellama-fim": {
        "fim": FIM,
        "user": {"messages": USER},
        "user-assistant-user": {"messages": MULTI_TURN},
    },
    "qwen2.5-coder": {
        **CHAT_CASES,
        "fim": FIM,
        "tools": {"messages": [WITH_SYSTEM[0], *USER], "tools": TOOLS},
        "tools-no-system": {"messages": USER, "tools": TOOLS},
        "tool-calls": {"messages": TOOL_TURNS, "tools": TOOLS},
    },
    "legacy-alpaca": {
        **CHAT_CASES,
        "late-system": {
            "messages": [*MULTI_TURN[:2], {"role": "system", "content": "Be terse."}, MULTI_TURN[2]]
        },
        "fim": FIM,
    },
}

GOLDEN_PARAMS = [
    pytest.param(name, case, kwargs, id=f"{name}/{case}")
    for name, cases in GOLDEN.items()
    for case, kwargs in cases.items()
]


@pytest.mark.parametrize(("name", "case", "kwargs"), GOLDEN_PARAMS)
def test_golden(name: str, case: str, kwargs: dict[str, Any]) -> None:
    template = parse((TESTDATA / f"{name}.gotmpl").read_text())
    got = render_prompt(template, **kwargs)
    expected_path = TESTDATA / name / f"{case}.txt"
    if os.environ.get("LLAMITA_UPDATE_GOLDEN"):
        expected_path.parent.mkdir(exist_ok=True)
        expected_path.write_text(got)
    assert got == expected_path.read_text()


def test_golden_files_all_have_cases() -> None:
    on_disk = {f"{p.parent.name}/{p.stem}" for p in TESTDATA.glob("*/*.txt")}
    declared = {f"{name}/{case}" for name, cases in GOLDEN.items() for case in cases}
    assert on_disk == declared
    assert {p.stem for p in TESTDATA.glob("*.gotmpl")} == set(GOLDEN)


@pytest.mark.parametrize(
    ("name", "vars_"),
    [
        ("codellama-fim", ["prompt", "response", "suffix"]),
        ("legacy-alpaca", ["prompt", "response", "system"]),
        ("chatml", ["content", "messages", "role", "system"]),
        ("qwen2.5-coder", ["$", "$i", "$last", "arguments", "content", "function", "messages", "name"]),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_golden_template_vars(name: str, vars_: list[str]) -> None:
    names = parse((TESTDATA / f"{name}.gotmpl").read_text()).vars()
    assert set(vars_) <= set(names)


# --------------------------------------------------------------------------- modes

PEEK = "{{ .Prompt }}|{{ .Suffix }}|{{ .System }}|{{ .Response }}|{{ with .Messages }}{{ len . }}{{ end }}"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param(
            {"prompt": "p", "suffix": "s"}, "p|s|<no value>||", id="fim-sees-only-prompt-and-suffix"
        ),
        pytest.param({"prompt": "p"}, "<no value>|<no value>|||", id="prompt-without-suffix-is-chat"),
        pytest.param(
            {"suffix": "s", "messages": USER}, "<no value>|<no value>|||1", id="suffix-without-prompt"
        ),
        pytest.param(
            {"messages": [{"role": "system", "content": "a"}, {"role": "system", "content": "b"}]},
            "<no value>|<no value>|a\n\nb||1",
            id="system-contents-joined",
        ),
    ],
)
def test_mode_selection(kwargs: dict[str, Any], expected: str) -> None:
    # Missing keys print "<no value>", exactly as Go's missingkey=zero does on Ollama's map[string]any.
    assert render_prompt(parse(PEEK), **kwargs) == expected


def test_fim_mode_values() -> None:
    tmpl = parse("{{ .Prompt }}<{{ .Suffix }}>{{ .Response }}{{ .Think }}{{ .ThinkLevel }}{{ .IsThinkSet }}")
    assert render_prompt(tmpl, prompt="a", suffix="b", think="high") == "a<b>truehightrue"
    assert render_prompt(tmpl, prompt="a", suffix="b") == "a<b>falsefalse"


def test_messages_mode_keeps_system_messages_in_list() -> None:
    tmpl = parse("{{ .System }}#{{ range .Messages }}[{{ .Role }}:{{ .Content }}]{{ end }}")
    assert render_prompt(tmpl, WITH_SYSTEM) == (
        "Answer in one word.#[system:Answer in one word.][user:What is the capital of France?]"
        "[assistant:Paris.][user:And of Italy?]"
    )


TOOL_JSON = (
    '[{"type":"function","function":{"name":"f","description":"",'
    '"parameters":{"type":"object","properties":null}}}]'
)


@pytest.mark.parametrize(
    ("tools", "expected"),
    [
        pytest.param(None, ("false", "null", "null"), id="no-tools-is-nil"),
        pytest.param([], ("false", "[]", "[]"), id="empty-tools"),
        pytest.param(
            [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            ("true", TOOL_JSON, TOOL_JSON),
            id="tool-json-shape",
        ),
    ],
)
def test_tools_values(tools: list[Any] | None, expected: tuple[str, str, str]) -> None:
    tmpl = parse(
        "{{ range .Messages }}{{ end }}"
        "{{ if .Tools }}true{{ else }}false{{ end }}|{{ .Tools }}|{{ json .Tools }}"
    )
    assert tuple(render_prompt(tmpl, USER, tools=tools).split("|")) == expected


@pytest.mark.parametrize(
    ("think", "expected"),
    [
        pytest.param(None, (False, "", False), id="unset"),
        pytest.param(True, (True, "medium", True), id="true-means-medium"),
        pytest.param(False, (False, "", True), id="false"),
        pytest.param("high", (True, "high", True), id="level"),
        pytest.param("max", (True, "max", True), id="max"),
        pytest.param("extreme", (False, "extreme", True), id="unknown-level-is-off"),
    ],
)
def test_think_values(think: bool | str | None, expected: tuple[bool, str, bool]) -> None:
    assert think_values(think) == expected
    tmpl = parse("{{ range .Messages }}{{ end }}{{ .Think }},{{ .ThinkLevel }},{{ .IsThinkSet }}")
    on, level, is_set = expected
    assert render_prompt(tmpl, USER, think=think) == f"{str(on).lower()},{level},{str(is_set).lower()}"


# --------------------------------------------------------------------------- legacy mode


@pytest.mark.parametrize(
    ("src", "messages", "expected"),
    [
        pytest.param("{{ .Prompt }}", PREFILL, "Write a haiku about tea.Steam curls", id="appended-response"),
        pytest.param(
            "<{{ .Prompt }}:{{ .Response }}>", PREFILL, "<Write a haiku about tea.:Steam curls", id="tail-cut"
        ),
        pytest.param(
            "<{{ .Prompt }}:{{ .Response }}>",
            MULTI_TURN,
            "<What is the capital of France?:Paris.><And of Italy?:",
            id="turns",
        ),
        pytest.param(
            "{{ if .Response }}R{{ end }}[{{ .Prompt }}]{{ .Response }}.",
            PREFILL,
            "R[Write a haiku about tea.]Steam curls",
            id="condition-not-cut",
        ),
        pytest.param(
            "{{ .Prompt }}{{ $.Response }}|",
            PREFILL,
            "Write a haiku about tea.Steam curls|",
            id="variable-not-cut",
        ),
        pytest.param(
            # the pipeline's second command is visited after the cut, so the whole action goes
            '{{ .Prompt }}{{ .Response | printf "(%s)" }}!',
            PREFILL,
            "Write a haiku about tea.",
            id="piped-response-dropped",
        ),
        pytest.param(
            "{{ .System }}/{{ .Prompt }}/{{ .Response }};",
            [
                {"role": "user", "content": "u"},
                {"role": "system", "content": "s"},
                {"role": "user", "content": "v"},
            ],
            "/u/;s/v/",
            id="system-flushes-pending-prompt",
        ),
        pytest.param(
            "{{ .System }}/{{ .Prompt }}/{{ .Response }};",
            [
                {"role": "user", "content": "u1"},
                {"role": "tool", "content": "ignored"},
                {"role": "user", "content": "u2"},
            ],
            "/u2/",
            id="tool-role-splits-users-and-is-ignored",
        ),
        pytest.param(
            "A{{ .Prompt }}B{{ if .X }}{{ .Response }}{{ else }}E{{ end }}C",
            USER,
            "AHello, who are you?B",
            id="else-after-cut-dropped",
        ),
        pytest.param("x{{ .Prompt }}y", [], "xy", id="no-messages"),
    ],
)
def test_legacy(src: str, messages: list[dict[str, Any]], expected: str) -> None:
    assert render_prompt(parse(src), messages) == expected


def test_legacy_tail_does_not_change_template() -> None:
    tmpl = parse("[{{ .Prompt }}]{{ .Response }}<end>")
    render_prompt(tmpl, USER)
    assert tmpl.execute({"Prompt": "p", "Response": "r"}) == "[p]r<end>"
    assert tmpl.source == "[{{ .Prompt }}]{{ .Response }}<end>"


# --------------------------------------------------------------------------- tools inside templates


def in_calls(body: str) -> str:
    return "{{ range .Messages }}{{ range .ToolCalls }}" + body + "{{ end }}{{ end }}"


def in_tools(body: str) -> str:
    return "{{ range .Tools }}" + body + "{{ end }}"


TOOL_CALL = [
    {
        "role": "assistant",
        "tool_calls": [
            {
                "id": "call_7",
                "function": {
                    "index": 1,
                    "name": "lookup",
                    "arguments": {"zeta": "<z>", "alpha": 1000000, "half": 0.5, "on": True, "none": None},
                },
            }
        ],
    }
]


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        pytest.param(
            in_calls("{{ .Function.Arguments }}"),
            '{"alpha":1000000,"half":0.5,"none":null,"on":true,"zeta":"\\u003cz\\u003e"}',
            id="arguments-print-as-sorted-json",
        ),
        pytest.param(
            in_calls("{{ range $k, $v := .Function.Arguments }}{{ $k }}={{ $v }};{{ end }}"),
            "alpha=1e+06;half=0.5;none=<no value>;on=true;zeta=<z>;",
            id="arguments-range-like-go-map-of-float64",
        ),
        pytest.param(
            in_calls("{{ .ID }} {{ .Function.Index }} {{ .Function.Name }}"),
            "call_7 1 lookup",
            id="tool-call-fields",
        ),
        pytest.param(
            "{{ range .Messages }}{{ if .ToolCalls }}calls{{ end }}"
            "{{ .ToolName }}{{ .ToolCallID }}|{{ .Images }}{{ end }}",
            "calls|[]",
            id="message-zero-fields",
        ),
    ],
)
def test_tool_calls_in_templates(src: str, expected: str) -> None:
    assert render_prompt(parse(src), TOOL_CALL) == expected


PROPS_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search",
            "description": "Search code",
            "parameters": {
                "type": "object",
                "required": ["query"],
                "properties": {
                    "query": {"type": "string", "description": "Text"},
                    "limit": {"type": ["integer", "null"]},
                    "mode": {"type": "string", "enum": ["exact", "fuzzy"]},
                    "filter": {
                        "type": "object",
                        "properties": {"path": {"type": "string"}, "lang": {"type": "string"}},
                    },
                    "choice": {"anyOf": [{"type": "string"}, {"type": "boolean"}]},
                },
            },
        },
    }
]


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        pytest.param(
            in_tools(
                "{{ range $n, $p := .Function.Parameters.Properties }}"
                "{{ $n }}:{{ $p.Type }}:{{ toTypeScriptType $p }};{{ end }}"
            ),
            "choice::string | boolean;filter:object:Record<string, any>;limit:[integer null]:number | null;"
            "mode:string:string;query:string:string;",
            id="properties-range-sorted",
        ),
        pytest.param(
            in_tools('{{ json (index .Function.Parameters.Properties "filter") }}'),
            '{"type":"object","properties":{"path":{"type":"string"},"lang":{"type":"string"}}}',
            id="nested-properties-keep-order",
        ),
        pytest.param(
            in_tools(
                "{{ .Function.Parameters.Required }} "
                '{{ (index .Function.Parameters.Properties "mode").Enum }}'
            ),
            "[query] [exact fuzzy]",
            id="required-and-enum",
        ),
        pytest.param(
            in_tools("{{ .Function.Name }}: {{ .Function.Description }}"),
            "search: Search code",
            id="function-fields",
        ),
    ],
)
def test_tool_definitions_in_templates(src: str, expected: str) -> None:
    assert render_prompt(parse("{{ range .Messages }}{{ end }}" + src), USER, tools=PROPS_TOOLS) == expected


def test_tool_function_prints_as_json() -> None:
    tmpl = parse("{{ range .Messages }}{{ end }}{{ range .Tools }}{{ .Function }}{{ end }}")
    out = render_prompt(tmpl, USER, tools=TOOLS)
    assert out.startswith('{"name":"read_file","description":"Read a file from the workspace","parameters":')
    assert '"properties":{"max_lines":{"type":"integer"' in out


@dataclass
class ObjMessage:
    role: str
    content: str
    tool_calls: list[Any] | None = None


def test_messages_may_be_objects() -> None:
    tmpl = parse("{{ range .Messages }}{{ .Role }}={{ .Content }};{{ end }}")
    assert (
        render_prompt(tmpl, [ObjMessage("user", "hi"), ObjMessage("assistant", "yo")])
        == "user=hi;assistant=yo;"
    )


# --------------------------------------------------------------------------- request assembly


@pytest.mark.parametrize(
    ("messages", "system", "collated"),
    [
        pytest.param(CONSECUTIVE, "", [("user", "Part one.\n\nPart two.")], id="users-merged"),
        pytest.param(
            [{"role": "tool", "content": "a"}, {"role": "tool", "content": "b"}],
            "",
            [("tool", "a"), ("tool", "b")],
            id="tools-not-merged",
        ),
        pytest.param(
            [
                {"role": "system", "content": "s1"},
                {"role": "system", "content": "s2"},
                {"role": "user", "content": "u"},
            ],
            "s1\n\ns2",
            [("system", "s1\n\ns2"), ("user", "u")],
            id="systems-joined-and-merged",
        ),
        pytest.param(
            [
                {"role": "system", "content": "s1"},
                {"role": "user", "content": "u"},
                {"role": "system", "content": "s2"},
            ],
            "s1\n\ns2",
            [("system", "s1"), ("user", "u"), ("system", "s2")],
            id="systems-apart",
        ),
        pytest.param([], "", [], id="empty"),
    ],
)
def test_collate(messages: list[dict[str, Any]], system: str, collated: list[tuple[str, str]]) -> None:
    got_system, got = collate(messages)
    assert got_system == system
    assert [(m["role"], m["content"]) for m in got] == collated


def test_collate_keeps_first_message_fields_and_input_untouched() -> None:
    msgs = [
        {"role": "user", "content": "a", "images": ["img1"]},
        {"role": "user", "content": "b", "images": ["img2"]},
    ]
    _, got = collate(msgs)
    assert got[0]["images"] == ["img1"]
    assert msgs[0]["content"] == "a"


@pytest.mark.parametrize(
    ("request_msgs", "model_system", "expected_roles"),
    [
        pytest.param(USER, "sys", ["system", "user"], id="model-system-prepended"),
        pytest.param(WITH_SYSTEM, "sys", ["system", "user", "assistant", "user"], id="request-system-wins"),
        pytest.param(USER, "", ["user"], id="no-system"),
    ],
)
def test_chat_messages(
    request_msgs: list[dict[str, Any]], model_system: str, expected_roles: list[str]
) -> None:
    got = chat_prompt_messages(request_msgs, model_system=model_system)
    assert [m["role"] for m in got] == expected_roles


def test_chat_messages_model_messages_first() -> None:
    history = [{"role": "user", "content": "m1"}, {"role": "assistant", "content": "m2"}]
    got = chat_prompt_messages(USER, model_system="sys", model_messages=history)
    assert [m["content"] for m in got] == ["sys", "m1", "m2", "Hello, who are you?"]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({}, [("user", "p")], id="prompt-only"),
        pytest.param(
            {"system": "req", "model_system": "model"},
            [("system", "req"), ("user", "p")],
            id="request-system",
        ),
        pytest.param({"model_system": "model"}, [("system", "model"), ("user", "p")], id="model-system"),
        pytest.param(
            {"model_messages": [{"role": "assistant", "content": "hi"}]},
            [("assistant", "hi"), ("user", "p")],
            id="model-messages",
        ),
        pytest.param(
            {"model_messages": [{"role": "assistant", "content": "hi"}], "has_context": True},
            [("user", "p")],
            id="context-skips-model-messages",
        ),
    ],
)
def test_generate_messages(kwargs: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    got = generate_messages("p", **kwargs)
    assert [(m["role"], m["content"]) for m in got] == expected


def test_render_generate() -> None:
    tmpl = parse((TESTDATA / "codellama-fim.gotmpl").read_text())
    assert render_generate(tmpl, "def f(", suffix="pass") == "<PRE> def f( <SUF>pass <MID>"
    assert render_generate(tmpl, "def f(") == "def f("
    chat = parse("{{ .System }}|{{ range .Messages }}{{ .Role }};{{ end }}{{ .Tools }}")
    assert render_generate(chat, "p", model_system="sys") == "sys|system;user;[]"


def test_messages_from_keeps_cut_system_messages() -> None:
    msgs = [{"role": "system", "content": "s"}, *MULTI_TURN]
    assert messages_from(msgs, 3) == [msgs[0], msgs[3]]
    assert messages_from(msgs, 0) == msgs


@pytest.mark.parametrize(
    ("messages", "start", "contents", "media"),
    [
        pytest.param(
            [{"role": "user", "content": "look", "images": ["A", "B"]}],
            0,
            ["[img-0][img-1]look"],
            ["A", "B"],
            id="prefix",
        ),
        pytest.param(
            [{"role": "user", "content": "x [img] y [img]", "images": ["A"]}],
            0,
            ["x [img-0] y [img]"],
            ["A"],
            id="marker",
        ),
        pytest.param(
            [
                {"role": "user", "content": "a", "images": ["A"]},
                {"role": "user", "content": "b", "images": ["B"]},
            ],
            1,
            ["a", "[img-0]b"],
            ["B"],
            id="from-start",
        ),
    ],
)
def test_tag_images(
    messages: list[dict[str, Any]], start: int, contents: list[str], media: list[str]
) -> None:
    tagged, got_media = tag_images(messages, start)
    assert [m["content"] for m in tagged] == contents
    assert got_media == media
