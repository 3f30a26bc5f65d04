"""Schema grammars that would take the process down are refused, not compiled.

llama.cpp parses a grammar recursively: a JSON schema such as ``{"maxLength": 100000}`` becomes
a grammar nested 100,000 deep, which overflowed the C stack (a segfault of the whole server)
through ``format`` and through a forced tool call's parameters.  Its counts also make the
converter build a grammar as large as they say (``maxLength: 10**9``: gigabytes).
"""

from __future__ import annotations

import pytest

from llamita.server.engine.sampling import (
    MAX_GRAMMAR_NESTING,
    GrammarError,
    check_schema_bounds,
    format_grammar,
    grammar_compiles,
    grammar_nesting,
)


def _nested(depth: int, suffix: str = "") -> str:
    return "root ::= " + '("a" ' * depth + (")" + suffix) * depth


def test_nesting_ignores_literals_and_classes() -> None:
    assert grammar_nesting('root ::= "(((" [()] ( "a" ( "b" ) ) "\\")"') == 2
    assert grammar_nesting(_nested(7)) == 7


def test_a_grammar_too_deep_for_the_stack_is_refused() -> None:
    assert grammar_compiles(_nested(MAX_GRAMMAR_NESTING))
    assert not grammar_compiles(_nested(MAX_GRAMMAR_NESTING + 1))
    assert not grammar_compiles(_nested(100_000, "?"))  # this one crashed the process


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "maxLength": 100_000},
        {"type": "string", "minLength": 10**9},
        {"type": "array", "items": {"type": "string"}, "maxItems": 10**6},
        {
            "type": "object",
            "properties": {"deep": {"type": "object", "properties": {"s": {"maxLength": 10**5}}}},
        },
        {"type": "string", "pattern": "^a{99999}$"},
        {"type": "string", "pattern": "^a{2,99999}$"},
        {"type": "string", "pattern": "^a{" + "9" * 5000 + "}$"},
        {"anyOf": [{"type": "string"}, {"type": "string", "maxLength": 5000}]},
    ],
)
def test_counts_over_the_limit_are_refused(schema: dict) -> None:
    with pytest.raises(GrammarError, match="over llamita's limit"):
        check_schema_bounds(schema)
    with pytest.raises(GrammarError, match=r"^invalid format: a count in the schema is over"):
        format_grammar(schema)


def test_counts_within_the_limit_still_work() -> None:
    schema = {
        "type": "object",
        "properties": {
            "s": {"type": "string", "maxLength": 512},  # llama.cpp's own limits refuse ~1,000
            "p": {"type": "string", "pattern": "^[a-z]{1,64}$"},
            "l": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 8},
        },
    }
    check_schema_bounds(schema)
    assert format_grammar(schema)
