"""Template functions and Go value formatting (fmt, encoding/json), checked against Go's output."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

import pytest

from llamita.server.template import Template, TemplateError, parse
from llamita.server.template.funcs import (
    BUILTINS,
    current_date,
    go_eq,
    go_index,
    go_len,
    go_lt,
    go_slice,
    ollama_json,
    to_typescript_type,
    yesterday_date,
)
from llamita.server.template.parse import parse_trees
from llamita.server.template.values import FuncError


def run(src: str, data: Any = None) -> str:
    return Template(src, parse_trees(src, BUILTINS)).execute(data)


# --------------------------------------------------------------------------- fmt


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        pytest.param(
            '{{ printf "%5.2f|%-6d|%06d|%+d|%x|%X|%q|%o|%c|%U" '
            '3.14159 42 -42 5 255 "hi" "a\\"b\\n" 8 65 9731 }}',
            ' 3.14|42    |-00042|+5|ff|6869|"a\\"b\\n"|10|A|U+2603',
            id="numbers-and-strings",
        ),
        pytest.param(
            '{{ printf "%e|%g|%.3g|%8s|%-8s|%05s|%.2s|%x|% x|%#x" '
            '1234.5678 1e-7 1234.5678 "ab" "ab" "ab" "héllo" "hi" "hi" 255 }}',
            "1.234568e+03|1e-07|1.23e+03|      ab|ab      |000ab|hé|6869|68 69|0xff",
            id="floats-width-precision",
        ),
        pytest.param('{{ printf "%d %s" 1 }}', "1 %!s(MISSING)", id="missing-argument"),
        # Go's parsenum gives up on widths/precisions over 1e6 (no gigabyte of padding).
        pytest.param('{{ printf "%999999999d" 1 }}', "%!(NOVERB)%!(EXTRA int=1)", id="width-too-large"),
        pytest.param(
            '{{ printf "%.99999999f" 1.5 }}', "%!(NOVERB)%!(EXTRA float64=1.5)", id="prec-too-large"
        ),
        pytest.param('{{ printf "%d" 1 "x" nil }}', "1%!(EXTRA string=x, <nil>)", id="extra-arguments"),
        pytest.param(
            '{{ printf "%z %v %d" 1 nil nil }}', "%!z(int=1) <nil> %!d(<nil>)", id="bad-verb-and-nil"
        ),
        pytest.param('{{ printf "100%%" }}', "100%", id="percent"),
        pytest.param('{{ printf "%" }}', "%!(NOVERB)", id="no-verb"),
        pytest.param(
            '{{ printf "%t %v %s" true false 1.5 }}', "true false %!s(float64=1.5)", id="wrong-type"
        ),
        pytest.param(
            '{{ printf "%6.2f|%-8.3e|%+.1f|%08.3f" -3.14159 12345.678 2.0 -3.5 }}',
            " -3.14|1.235e+04|+2.0|-003.500",
            id="float-flags",
        ),
        pytest.param(
            '{{ printf "%T %T %T %T %T" "s" 1 1.5 true nil }}', "string int float64 bool <nil>", id="types"
        ),
        pytest.param('{{ printf "%v|%d" 1e6 1000000 }}', "1e+06|1000000", id="float-vs-int"),
        pytest.param('{{ printf "%q" 65 }}', "'A'", id="quoted-rune"),
        pytest.param('{{ printf "%5t|%-5v|%3d" true 1 12345 }}', " true|1    |12345", id="padding"),
        pytest.param('{{ printf "%.0f %.1f" 2.5 0.05 }}', "2 0.1", id="rounding"),
        pytest.param('{{ printf "%s" .M }}', "map[a:x b:%!s(int=2)]", id="verb-applies-inside-maps"),
        pytest.param('{{ printf "%q" .L }}', '["x" "y"]', id="verb-applies-inside-slices"),
        pytest.param('{{ print 1 2 "a" 3 nil true 1.0 }}', "1 2a3 <nil> true 1", id="print-spacing"),
        pytest.param('{{ println "a" 1 nil }}', "a 1 <nil>\n", id="println"),
    ],
)
def test_print_functions(src: str, expected: str) -> None:
    assert run(src, {"M": {"b": 2, "a": "x"}, "L": ["x", "y"]}) == expected


@dataclasses.dataclass
class Point:
    X: int
    Y: Any = None


class Named:
    def __str__(self) -> str:
        return "named!"


# --------------------------------------------------------------------------- encoding/json


def test_json_function_swallows_errors() -> None:
    assert ollama_json(math.nan) == ""
    assert run("{{ json . }}", {"k": [1, "<"]}) == '{"k":[1,"\\u003c"]}'


# --------------------------------------------------------------------------- comparison and truth


@pytest.mark.parametrize(
    ("args", "result"),
    [
        (("a", "a"), True),
        (("a", "b", "a"), True),
        ((1, 2, 3), False),
        ((1.5, 1.5), True),
        ((True, True), True),
        ((None, None), True),
        ((None, "x"), False),
        (("x", None), False),
        ((Point(1), Point(1)), True),
    ],
    ids=repr,
)
def test_eq(args: tuple[Any, ...], result: bool) -> None:
    assert go_eq(*args) is result


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: go_eq("a", 1), "incompatible types for comparison"),
        (lambda: go_eq(1, 1.0), "incompatible types for comparison"),
        (lambda: go_eq(True, 1), "incompatible types for comparison"),
        (lambda: go_eq(1), "missing argument for comparison"),
        (lambda: go_eq([1], [1]), "non-comparable type [1]: []interface {}"),
        (lambda: go_lt([1], 2), "invalid type for comparison"),
        (lambda: go_lt(True, False), "invalid type for comparison"),
        (lambda: go_lt(1, "a"), "incompatible types for comparison"),
        (lambda: go_index(None, 1), "index of untyped nil"),
        (lambda: go_index([1], "0"), "cannot index slice/array with type string"),
        (lambda: go_index([1], None), "cannot index slice/array with nil"),
        (lambda: go_index([1], -1), "index out of range: -1"),
        (lambda: go_index(5, 0), "can't index item of type int"),
        (lambda: go_slice("abc", 0, 1, 2), "cannot 3-index slice a string"),
        (lambda: go_slice([1, 2], 2, 1), "invalid slice index: 2 > 1"),
        (lambda: go_slice([1, 2], 0, 1, 2, 3), "too many slice indexes: 4"),
        (lambda: go_slice(3, 0), "can't slice item of type int"),
        (lambda: go_len(None), "len of nil pointer"),
        (lambda: go_len(1.5), "len of type float64"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_function_errors(call: Any, message: str) -> None:
    with pytest.raises(FuncError) as exc:
        call()
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        pytest.param(
            '{{ lt 1 2 }} {{ le 2 2 }} {{ gt "b" "a" }} {{ ge 1.5 2.5 }} {{ ne "a" "a" }}',
            "true true true false false",
            id="ordering",
        ),
        pytest.param('{{ index .Grid 1 0 }} {{ index .Map "k" "j" }}', "3 v", id="multi-index"),
        pytest.param(
            '{{ slice .Grid 1 }} {{ slice "héllo" 0 3 }} {{ slice .Grid 0 1 2 }}',
            "[[3 4]] hé [[1 2]]",
            id="slice",
        ),
        pytest.param("{{ call .Add 2 3 }}", "5", id="call"),
    ],
)
def test_collection_functions(src: str, expected: str) -> None:
    data = {"Grid": [[1, 2], [3, 4]], "Map": {"k": {"j": "v"}}, "Add": lambda a, b: a + b}
    assert run(src, data) == expected


def test_call_wraps_python_errors() -> None:
    with pytest.raises(TemplateError, match="error calling call: division by zero"):
        run("{{ call .Div 1 0 }}", {"Div": lambda a, b: a / b})


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        pytest.param(
            '{{ html "<a href=\'x\'>&\\"</a>" }}', "&lt;a href=&#39;x&#39;&gt;&amp;&#34;&lt;/a&gt;", id="html"
        ),
        pytest.param('{{ html 1 "a" 2 }}', "1a2", id="html-sprint"),
        pytest.param(
            '{{ js "a\'b\\"c<d>&=\\n\\u00e9\\u2028" }}',
            "a\\'b\\\"c\\u003Cd\\u003E\\u0026\\u003D\\u000Aé\\u2028",
            id="js",
        ),
        pytest.param('{{ urlquery "a b/c?d=é&~" }}', "a+b%2Fc%3Fd%3D%C3%A9%26~", id="urlquery"),
    ],
)
def test_escapers(src: str, expected: str) -> None:
    assert run(src) == expected


# --------------------------------------------------------------------------- Ollama's functions


def test_dates_are_local_iso_days() -> None:
    today = dt.date.today()
    assert current_date() in (today.isoformat(), (today + dt.timedelta(days=1)).isoformat())
    assert (
        yesterday_date("ignored format")
        == (dt.date.fromisoformat(current_date()) - dt.timedelta(days=1)).isoformat()
    )
    out = parse("{{ currentDate }}|{{ yesterdayDate }}").execute({})
    assert len(out.split("|")[0]) == 10 and out.split("|")[1].count("-") == 2


@pytest.mark.parametrize(
    ("prop", "ts"),
    [
        ({"type": "string"}, "string"),
        ({"type": "integer"}, "number"),
        ({"type": "number"}, "number"),
        ({"type": "boolean"}, "boolean"),
        ({"type": "array"}, "any[]"),
        ({"type": "object"}, "Record<string, any>"),
        ({"type": "null"}, "null"),
        ({"type": "weird"}, "any"),
        ({"type": ["string", "null"]}, "string | null"),
        ({"anyOf": [{"type": "string"}, {"type": ["integer", "boolean"]}]}, "string | number | boolean"),
        ({}, "any"),
        ("string", "any"),
        (None, "any"),
    ],
    ids=repr,
)
def test_to_typescript_type(prop: Any, ts: str) -> None:
    assert to_typescript_type(prop) == ts


def test_builtin_names() -> None:
    go_builtins = "and or not len index slice print printf println html js urlquery call eq ne lt le gt ge"
    ollama = "json currentDate yesterdayDate toTypeScriptType"
    expected = set(go_builtins.split()) | set(ollama.split())
    assert set(BUILTINS) == expected
