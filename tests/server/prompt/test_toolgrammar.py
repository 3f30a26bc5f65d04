"""The forced-call grammar (prompt/toolgrammar.py): it compiles, and what it lets a model write
is exactly what the tool-call parser turns back into ``tool_calls``, for every tag style.

Acceptance is llama.cpp's own: the text is tokenized with SmolLM2's vocabulary and fed through
the compiled grammar token by token, then the end of generation must be allowed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import llama_cpp as ll
import pytest
from tooltemplates import LLAMA31, MISTRAL, PYTHON_TAG, QWEN

from llamita.server.engine.llama import LoadOptions, Model
from llamita.server.engine.sampling import grammar_compiles
from llamita.server.model.default_model import CHATML_TEMPLATE
from llamita.server.prompt.toolgrammar import ToolGrammarError, literal, tool_grammar
from llamita.server.prompt.tools import ToolParser, tool_call_opening
from llamita.server.template import Template, parse

SMOLLM2 = parse(CHATML_TEMPLATE)


def _tool(name: str, parameters: Any = None) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name, "description": f"{name} tool"}
    if parameters is not None:
        function["parameters"] = parameters
    return {"type": "function", "function": function}


WEATHER = _tool(
    "get_weather",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},  # optional enum
        },
        "required": ["city"],
    },
)
NESTED = _tool(
    "book",
    {
        "type": "object",
        "properties": {
            "guest": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                "required": ["name"],
            },
            "nights": {"type": "integer", "minimum": 1},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            "vip": {"type": "boolean"},
        },
        "required": ["guest", "nights"],
    },
)
NO_PARAMETERS = _tool("ping")
EMPTY_PROPERTIES = _tool("now", {"type": "object", "properties": {}})
# Two tools whose $defs share a name but not a shape: their rules must not clash.
REF_A = _tool(
    "ref_a",
    {"type": "object", "properties": {"x": {"$ref": "#/$defs/Item"}}, "$defs": {"Item": {"type": "integer"}}},
)
REF_B = _tool(
    "ref_b",
    {"type": "object", "properties": {"x": {"$ref": "#/$defs/Item"}}, "$defs": {"Item": {"type": "string"}}},
)
ALL = [WEATHER, NESTED, NO_PARAMETERS, EMPTY_PROPERTIES, REF_A, REF_B]

TEMPLATES = [
    pytest.param(SMOLLM2, id="smollm2-chatml"),
    pytest.param(QWEN, id="qwen-tool_call-tag"),
    pytest.param(LLAMA31, id="llama3.1-bare-json"),
    pytest.param(MISTRAL, id="mistral-list"),
    pytest.param(PYTHON_TAG, id="python-tag"),
    pytest.param(None, id="no-template"),
]


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("tool", ALL, ids=lambda t: t["function"]["name"])
@pytest.mark.parametrize("parallel", [True, False], ids=["parallel", "serial"])
def test_compiles(template: Template | None, tool: dict[str, Any], parallel: bool) -> None:
    assert grammar_compiles(tool_grammar(template, [tool], parallel=parallel))
    assert grammar_compiles(tool_grammar(template, ALL, forced=tool["function"]["name"], parallel=parallel))


def test_every_tool_gets_rules_of_its_own() -> None:
    grammar = tool_grammar(SMOLLM2, ALL, parallel=True)
    names = [line.split(" ::= ")[0] for line in grammar.splitlines()]
    assert len(names) == len(set(names))
    assert grammar_compiles(grammar)


def test_literal_escapes() -> None:
    assert literal('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


def test_a_schema_it_cannot_convert_is_an_error() -> None:
    bad = _tool("bad", {"type": "object", "properties": {"x": {"$ref": "http://example.com/x"}}})
    with pytest.raises(ToolGrammarError, match="invalid parameters schema for tool 'bad'"):
        tool_grammar(SMOLLM2, [bad], parallel=True)


def test_no_tool_is_an_error() -> None:
    with pytest.raises(ToolGrammarError, match="no tool to call"):
        tool_grammar(SMOLLM2, [{"type": "function"}], parallel=True)


# ---- what the grammar accepts, by llama.cpp, and what the parser makes of it ---------------
@pytest.fixture(scope="module")
def vocab_model(smollm2_gguf: Path) -> Iterator[Model]:
    m = Model(smollm2_gguf, LoadOptions())
    yield m
    m.close()


def accepts(model: Model, grammar: str, text: str) -> bool:
    """Whether llama.cpp's grammar lets a model write ``text`` and then end its turn."""
    sampler = ll.llama_sampler_init_grammar(model.vocab, grammar.encode(), b"root")
    assert sampler, "the grammar does not compile"
    try:
        tokens = model.tokenize(text, add_bos=False, special=False)
        for token in [*tokens, ll.llama_vocab_eos(model.vocab)]:
            one = ll.llama_token_data(id=token, logit=1.0, p=0.0)
            cur = ll.llama_token_data_array(data=ll.ctypes.pointer(one), size=1, selected=-1, sorted=False)
            ll.llama_sampler_apply(sampler, ll.ctypes.byref(cur))
            if one.logit == float("-inf"):
                return False
            ll.llama_sampler_accept(sampler, token)
        return True
    finally:
        ll.llama_sampler_free(sampler)


def _call(name: str, arguments: dict[str, Any], key: str = "arguments") -> str:
    return json.dumps({"name": name, key: arguments}, ensure_ascii=False)


PARIS = {"city": "Paris"}
BOOKING = {"guest": {"name": "Ann", "age": 30}, "nights": 2, "tags": ["sea"], "vip": True}


def _written(template: Template | None, calls: list[str]) -> str:
    """What a model writes for ``calls`` in the syntax of ``template`` (as its replay shows it)."""
    style = {
        id(SMOLLM2): ("<tool_call>\n", "\n", "\n</tool_call>"),
        id(QWEN): ("<tool_call>\n", "\n", "\n</tool_call>"),
        id(MISTRAL): ("[TOOL_CALLS] [", ", ", "]"),
        id(PYTHON_TAG): ("<|python_tag|>", "\n", ""),
    }
    opening, separator, closing = style.get(id(template), ("", "\n", ""))
    assert opening == tool_call_opening(template)
    return opening + separator.join(calls) + closing


def _parsed(template: Template | None, text: str, tools: list[dict[str, Any]]) -> tuple[str, list[Any]]:
    parser = ToolParser(template, tools)
    content, calls = parser.feed(text)
    rest, more = parser.flush()
    return content + rest, [(c["function"]["name"], c["function"]["arguments"]) for c in calls + more]


@pytest.mark.model
@pytest.mark.parametrize("template", TEMPLATES)
def test_round_trip(vocab_model: Model, template: Template | None) -> None:
    key = "parameters" if template in (LLAMA31, PYTHON_TAG) else "arguments"  # as their replay writes it
    tools = [WEATHER, NESTED, NO_PARAMETERS]
    one = [_call("get_weather", PARIS, key)]
    two = [*one, _call("book", BOOKING, key), _call("ping", {}, key)]
    parallel = tool_grammar(template, tools, parallel=True)
    serial = tool_grammar(template, tools, parallel=False)
    forced = tool_grammar(template, tools, forced="book", parallel=True)

    for grammar, calls in ((parallel, one), (parallel, two), (serial, one), (forced, two[1:2])):
        text = _written(template, calls)
        assert accepts(vocab_model, grammar, text), text
        content, parsed = _parsed(template, text, tools)
        assert content == ""
        assert parsed == [(json.loads(c)["name"], json.loads(c)[key]) for c in calls]

    # ... and nothing else: more calls than allowed, another function, arguments off the schema.
    refused = [
        (serial, _written(template, two)),
        (forced, _written(template, one)),
        (parallel, _written(template, [_call("get_weather", {}, key)])),  # city is required
        (parallel, _written(template, [_call("get_weather", {"city": "Paris", "unit": "kelvin"}, key)])),
        (parallel, _written(template, [_call("book", {**BOOKING, "nights": "two"}, key)])),
        (parallel, _written(template, [_call("unknown", {}, key)])),
        (parallel, "Sure! " + _written(template, one)),
        (parallel, ""),
    ]
    for grammar, text in refused:
        assert not accepts(vocab_model, grammar, text), text


@pytest.mark.model
def test_optional_properties_and_any_object(vocab_model: Model) -> None:
    grammar = tool_grammar(SMOLLM2, [WEATHER, NO_PARAMETERS], parallel=True)
    for call in (
        _call("get_weather", {"city": "Paris", "unit": "celsius"}),
        _call("ping", {"anything": [1, {"deep": None}]}),  # no schema: any object
    ):
        assert accepts(vocab_model, grammar, _written(SMOLLM2, [call]))
    assert not accepts(vocab_model, grammar, _written(SMOLLM2, ['{"name": "ping", "arguments": 3}']))
