"""A grammar that makes a model call a tool: ``tool_choice`` enforced while it samples.

A forced call is written in the model's own syntax, read from its chat template the way the
parser (:mod:`.tools`) reads it, so what the grammar lets the model write is what the parser
turns back into ``tool_calls``: the template's opening text (``<tool_call>\\n``,
``[TOOL_CALLS] [``, ``<|python_tag|>``, nothing for bare JSON), one JSON object per call
(``{"name": "<tool>", "arguments": <object>}``, ``parameters`` where the template says so), and
the template's closing text (``</tool_call>``, ``]``) less any control token that ends a turn,
which the model then writes as its end of generation.  The arguments follow each tool's JSON
schema, converted by llama-cpp-python's ``json_schema_to_gbnf``; every tool's rules get a
prefix of their own, so two schemas never share (or clash on) a rule name.

Several calls are separated as the template replays them: a newline, or ``, `` in a list.
The grammar is text (GBNF); the runtime has llama.cpp compile it like a ``format`` grammar.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from llamita.server.template import Template

from .tools import arguments_key, closing_text, tool_call_opening

Json = dict[str, Any]

# A GBNF rule body's tokens: literals, character classes and repetition counts pass unchanged,
# words are rule names (llama.cpp allows letters, digits, "-" and "_" in them).
_GBNF_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|\[(?:\\.|[^\]\\])*\]|\{[^}]*\}|([A-Za-z0-9_-]+)|.', re.S)
# Control tokens that end a turn: the model writes them as its end of generation, not as text.
_TURN_END = re.compile(r"<\|[^|<>]*\|>|</s>|<eos>|<end_of_turn>")
_LITERAL_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
ANY_OBJECT: Json = {"type": "object"}


class ToolGrammarError(ValueError):
    """A tool's parameters schema that cannot be turned into a grammar."""


def literal(text: str) -> str:
    """``text`` as a GBNF string literal."""
    return '"' + "".join(_LITERAL_ESCAPES.get(c, c) for c in text) + '"'


def _renamed(body: str, prefix: str) -> str:
    """A rule body with every rule name it refers to prefixed."""
    return "".join(prefix + m.group(1) if m.group(1) else m.group(0) for m in _GBNF_TOKEN.finditer(body))


def _parameters(tool: Json) -> tuple[str, Json]:
    function = tool.get("function") or {}
    params = function.get("parameters")
    return function.get("name") or "", params if isinstance(params, dict) and params else ANY_OBJECT


def arguments_rules(schema: Json, prefix: str) -> tuple[str, list[str]]:
    """The rules of an arguments object that follows ``schema``: ``(root rule name, rule lines)``."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        grammar = json_schema_to_gbnf(json.dumps(schema))
    except Exception as e:  # the converter raises whatever its walk hits (KeyError, AssertionError, ...)
        raise ToolGrammarError(f"{type(e).__name__}: {e}") from e
    lines = []
    for line in grammar.splitlines():
        name, sep, body = line.partition(" ::= ")
        if not sep:
            raise ToolGrammarError(f"unexpected grammar line {line!r}")
        lines.append(f"{prefix}{name} ::= {_renamed(body, prefix)}")
    return f"{prefix}root", lines


def _forced_tools(tools: Iterable[Json], forced: str) -> list[Json]:
    named = [t for t in tools if isinstance(t, dict) and isinstance(t.get("function"), dict)]
    named = [t for t in named if t["function"].get("name")]
    return [t for t in named if t["function"]["name"] == forced] if forced else named


def tool_grammar(
    template: Template | None, tools: Iterable[Json], *, forced: str = "", parallel: bool
) -> str:
    """The GBNF of a reply that is only tool calls, in ``template``'s syntax.

    ``forced`` names the one function to call (one call); otherwise one call of any of ``tools``,
    or one or more when ``parallel``. Raises :class:`ToolGrammarError` for a schema it cannot convert.
    """
    key = arguments_key(template)
    opening = tool_call_opening(template)
    closing = _TURN_END.sub("", closing_text(template)).strip()
    listed = opening.rstrip().endswith("[")
    separator = ", " if listed else "\n"

    calls, rules = [], []
    for i, tool in enumerate(_forced_tools(tools, forced)):
        name, schema = _parameters(tool)
        try:
            root, lines = arguments_rules(schema, f"t{i}-")
        except ToolGrammarError as e:
            raise ToolGrammarError(f"invalid parameters schema for tool {name!r}: {e}") from e
        head = literal("{" + json.dumps("name") + ": " + json.dumps(name, ensure_ascii=False) + ", ")
        calls.append(f"call{i}")
        rules += [f"call{i} ::= {head} {literal(json.dumps(key) + ': ')} {root} {literal('}')}", *lines]
    if not calls:
        raise ToolGrammarError("no tool to call")
    many = parallel and not forced
    ending = (separator if closing and not listed else "") + closing
    root = " ".join(
        part
        for part in (
            literal(opening) if opening else "",
            "call",
            f"({literal(separator)} call)*" if many else "",
            literal(ending) if ending else "",
        )
        if part
    )
    return "\n".join([f"root ::= {root}", f"call ::= {' | '.join(calls)}", *rules])
