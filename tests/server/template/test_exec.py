"""Executor: Go text/template semantics (Ollama's missingkey=zero setup) over Python data.

Expected strings were cross-checked against Go 1.19's text/template with the same data, except that
Go decodes JSON numbers as float64 (here ``N`` is a Go int) and reports values taken out of a
``map[string]any`` as ``interface {}`` in type errors where we name the concrete type. Newer Go
features and Python-only conveniences are tested separately below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from llamita.server.template import Template, TemplateError
from llamita.server.template.exec import MAX_OUTPUT, MAX_STEPS, MAX_TEMPLATE_DEPTH, snake_case
from llamita.server.template.funcs import BUILTINS
from llamita.server.template.parse import parse_trees


def run(src: str, data: Any = None) -> str:
    """Execute without Ollama's parse-time touch-ups, to test the engine alone."""
    return Template(src, parse_trees(src, BUILTINS)).execute(data)


DATA: dict[str, Any] = {
    "S": "str",
    "E": "",
    "N": 3,
    "Z": 0,
    "F": 1.5,
    "B": True,
    "L": [1, "a", None, 2.5],
    "EL": [],
    "M": {"b": 2, "a": "x", "c": [1, 2], "d": {"z": 1}},
    "EM": {},
    "Nil": None,
    "Msgs": [{"Role": "user", "Content": "hi"}, {"Role": "assistant", "Content": "yo"}],
    "Strs": ["x", "y", "z"],
}

EXEC_CASES = [
    # printing
    ("{{.S}}|{{.E}}|{{.N}}|{{.Z}}|{{.F}}|{{.B}}", "str||3|0|1.5|true", "scalars"),
    (
        "{{.L}}|{{.EL}}|{{.M}}|{{.EM}}",
        "[1 a <nil> 2.5]|[]|map[a:x b:2 c:[1 2] d:map[z:1]]|map[]",
        "collections",
    ),
    ("{{.Nil}}|{{.Missing}}|{{ print .Missing }}", "<no value>|<no value>|<nil>", "nil-and-missing"),
    (
        "{{ 1e6 }} {{ 0.1 }} {{ 1e-5 }} {{ 123456.0 }} {{ 1234567.0 }} {{ 1e21 }}",
        "1e+06 0.1 1e-05 123456 1.234567e+06 1e+21",
        "floats",
    ),
    (
        "{{ -0x1F }} {{ 017 }} {{ 'a' }} {{ 1_000 }} {{ 2.50 }} {{ .5 }}",
        "-31 15 97 1000 2.5 0.5",
        "number-literals",
    ),
    ('{{ `raw\\n` }} {{ "esc\\t\\u00e9\\x41" }}', "raw\\n esc\té" + "A", "string-literals"),
    ("{{ true }} {{ false }} {{ $.S }}", "true false str", "constants-and-root"),
    # whitespace
    ("a  {{- .S -}}  b\n\n{{- .S }}\n {{ .S -}}\n\n c", "astrbstr\n strc", "trim-markers"),
    ("x {{- /* comment */ -}} y {{/* c2 */}} z", "xy  z", "comments"),
    # conditionals
    ("{{ if .B }}yes{{ else }}no{{ end }}", "yes", "if-else"),
    ("{{ if .E }}1{{ else if .Z }}2{{ else if .L }}3{{ end }}", "3", "else-if-chain"),
    (
        "{{ if .EL }}a{{ end }}{{ if .EM }}b{{ end }}{{ if .Nil }}c{{ end }}{{ if .Missing }}d{{ end }}",
        "",
        "falsy-values",
    ),
    ("{{ if .Msgs }}a{{ end }}{{ if .F }}b{{ end }}{{ if .S }}c{{ end }}", "abc", "truthy-values"),
    (
        "{{ with .S }}w={{ . }}{{ else }}none{{ end }}|{{ with .E }}x{{ else }}empty{{ end }}",
        "w=str|empty",
        "with",
    ),
    ("{{ with $x := .N }}{{ $x }}{{ . }}{{ end }}", "33", "with-declaration"),
    # and / or / not
    (
        "{{ and .S .N .E .F }}|{{ or .E .Z .S }}|{{ or .E .Z }}|{{ and .S .N }}",
        "|str|0|3",
        "and-or-return-deciding-value",
    ),
    ("{{ not .E }} {{ not .S }}", "true false", "not"),
    ("{{ if and .E (index .L 99) }}x{{ else }}short-circuit{{ end }}", "short-circuit", "and-short-circuits"),
    ("{{ or .S (index .L 99) }}", "str", "or-short-circuits"),
    ("{{ .E | or .Z }}", "", "or-with-piped-final"),
    # range
    ("{{ range .L }}[{{ . }}]{{ end }}", "[1][a][<no value>][2.5]", "range-list"),
    (
        "{{ range $i, $v := .L }}{{ $i }}={{ $v }};{{ end }}",
        "0=1;1=a;2=<no value>;3=2.5;",
        "range-index-value",
    ),
    ("{{ range $v := .Strs }}{{ $v }}{{ end }}", "xyz", "range-one-variable-is-element"),
    (
        "{{ range $k, $v := .M }}{{ $k }}:{{ $v }} {{ end }}",
        "a:x b:2 c:[1 2] d:map[z:1] ",
        "range-map-sorted",
    ),
    (
        "{{ range .EL }}x{{ else }}empty{{ end }}|{{ range .Nil }}x{{ else }}nil{{ end }}",
        "empty|nil",
        "range-else",
    ),
    (
        '{{ range .Strs }}{{ if eq . "y" }}{{ continue }}{{ end }}'
        '{{ if eq . "z" }}{{ break }}{{ end }}{{ . }}{{ end }}',
        "x",
        "break-continue",
    ),
    ("{{ range .Strs }}{{ range $.Strs }}{{ break }}{{ end }}{{ . }}{{ end }}", "xyz", "break-inner-only"),
    (
        "{{ range $i, $m := .Msgs }}{{ if $i }},{{ end }}{{ .Role }}:{{ $m.Content }}{{ end }}",
        "user:hi,assistant:yo",
        "range-structs",
    ),
    (
        "{{ range $i, $_ := .Msgs }}{{ if eq (len (slice $.Msgs $i)) 1 }}last={{ .Role }}{{ end }}{{ end }}",
        "last=assistant",
        "last-element-idiom",
    ),
    # variables
    (
        "{{ $x := 1 }}{{ $x }}{{ $x = 2 }}{{ $x }}{{ if true }}{{ $x = 3 }}{{ end }}{{ $x }}",
        "123",
        "assignment-reaches-outer",
    ),
    ("{{ $x := 1 }}{{ if true }}{{ $x := 2 }}{{ $x }}{{ end }}{{ $x }}", "21", "shadowing-is-scoped"),
    (
        "{{ $last := 0 }}{{ range $i, $m := .Msgs }}{{ $last = $i }}{{ end }}{{ $last }}",
        "1",
        "assign-in-range",
    ),
    ("{{ range .Strs }}{{ $.N }}{{ end }}", "333", "root-inside-range"),
    # field access
    ("{{ .M.d.z }} {{ .M.a }} {{ $.M.b }} {{ (index .Msgs 0).Role }}", "1 x 2 user", "nested-fields"),
    # functions
    ('{{ len .S }} {{ len .L }} {{ len .M }} {{ len "héllo" }}', "3 4 4 6", "len-counts-bytes"),
    (
        '{{ index .L 1 }} {{ index .M "a" }} {{ index .M "nope" }} {{ index .M "c" 1 }} {{ index "abc" 1 }}',
        "a x <no value> 2 98",
        "index",
    ),
    (
        "{{ slice .S 1 }} {{ slice .S 1 2 }} {{ slice .L 1 3 }} {{ slice .Strs }}",
        "tr t [a <nil>] [x y z]",
        "slice",
    ),
    (
        '{{ eq .N 3 }} {{ eq .S "a" "str" }} {{ ne .N 4 }} {{ lt .N 4 }} {{ le .N 3 }}'
        ' {{ gt .F 1.0 }} {{ ge .S "s" }}',
        "true true true true true true true",
        "comparisons",
    ),
    ('{{ eq .Missing "x" }} {{ eq .Nil .Missing }}', "false true", "compare-with-nil"),
    (
        '{{ .S | printf "%s!" }} {{ .N | printf "%d-%s" "x" }} {{ "abc" | len }}',
        "str! %!d(string=x)-%!s(int=3) 3",
        "pipelines",
    ),
    ('{{ print .S .N .N "x" .Nil }}|{{ println .S .N }}', "str3 3x<nil>|str 3\n", "print-println"),
    ("{{ html .Missing }} {{ print .Missing }}", "&lt;no value&gt; <nil>", "escapers-see-no-value"),
    # templates
    (
        '{{ define "t" }}T({{ . }}){{ end }}{{ template "t" .S }}{{ template "t" 5 }}',
        "T(str)T(5)",
        "define-template",
    ),
    ('{{ block "b" .N }}B{{ . }}{{ end }}', "B3", "block"),
    (
        '{{ define "v" }}{{ $ }}{{ end }}{{ $x := 1 }}{{ template "v" .S }}',
        "str",
        "template-gets-fresh-variables",
    ),
]


@pytest.mark.parametrize(("src", "expected"), [pytest.param(s, e, id=i) for s, e, i in EXEC_CASES])
def test_exec(src: str, expected: str) -> None:
    assert run(src, DATA) == expected


EXEC_ERRORS = [
    (
        "{{ .S.Foo }}",
        'template: :1:5: executing "" at <.S.Foo>: can\'t evaluate field Foo in type string',
        "field-of-string",
    ),
    (
        "{{ .Nil.Foo }}",
        'template: :1:7: executing "" at <.Nil.Foo>: nil pointer evaluating interface {}.Foo',
        "field-of-nil",
    ),
    (
        "{{ .M.a 1 }}",
        'template: :1:5: executing "" at <.M.a>: a is not a method but has arguments',
        "map-key-with-args",
    ),
    (
        "{{ index .L 10 }}",
        'template: :1:3: executing "" at <index .L 10>: error calling index: index out of range: 10',
        "index-range",
    ),
    (
        "{{ eq .S 1 }}",
        'template: :1:3: executing "" at <eq .S 1>: error calling eq: incompatible types for comparison',
        "eq-kinds",
    ),
    (
        "{{ lt .L 1 }}",
        'template: :1:3: executing "" at <lt .L 1>: error calling lt: invalid type for comparison',
        "lt-list",
    ),
    (
        "{{ len .N }}",
        'template: :1:3: executing "" at <len .N>: error calling len: len of type int',
        "len-int",
    ),
    (
        "{{ eq .N }}",
        'template: :1:3: executing "" at <eq .N>: error calling eq: missing argument for comparison',
        "eq-arity",
    ),
    (
        "{{ not 1 2 }}",
        'template: :1:3: executing "" at <not>: wrong number of args for not: want 1 got 2',
        "not-arity",
    ),
    (
        "{{ and }}",
        'template: :1:3: executing "" at <and>: wrong number of args for and: want at least 1 got 0',
        "and-arity",
    ),
    (
        "{{ .S 1 }}",
        'template: :1:3: executing "" at <.S>: S is not a method but has arguments',
        "args-to-field",
    ),
    (
        "{{ (1) .X }}",
        'template: :1:3: executing "" at <(1) .X>: can\'t give argument to non-function 1',
        "args-to-literal",
    ),
    ("{{ nil }}", 'template: :1:3: executing "" at <nil>: nil is not a command', "nil-command"),
    (
        "{{ range .N }}{{ . }}{{ end }}{{ range .S }}{{ end }}",
        'template: :1:39: executing "" at <.S>: range can\'t iterate over str',
        "range-string",
    ),
    (
        '{{ template "nope" . }}',
        'template: :1:12: executing "" at <{{template "nope" .}}>: template "nope" not defined',
        "undefined-template",
    ),
    (
        "{{ call .Nil }}",
        'template: :1:3: executing "" at <call .Nil>: error calling call: call of nil',
        "call-nil",
    ),
    (
        "{{ 9223372036854775808 }}",
        'template: :1:3: executing "" at <9223372036854775808>: 9223372036854775808 overflows int',
        "int-overflow",
    ),
]


@pytest.mark.parametrize(("src", "message"), [pytest.param(s, m, id=i) for s, m, i in EXEC_ERRORS])
def test_exec_errors(src: str, message: str) -> None:
    with pytest.raises(TemplateError) as exc:
        run(src, DATA)
    assert str(exc.value) == message


# ----------------------------------------------------------------- newer Go and Python conveniences


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        pytest.param("{{ range 3 }}{{ . }}{{ end }}", "012", id="range-over-int-go1.22"),
        pytest.param(
            "{{ range $i := 2 }}{{ $i }}{{ end }}{{ range 0 }}x{{ else }}none{{ end }}",
            "01none",
            id="range-int-else",
        ),
        pytest.param(
            "{{ with .E }}a{{ else with .S }}b={{ . }}{{ else }}c{{ end }}", "b=str", id="else-with-go1.23"
        ),
    ],
)
def test_newer_go_features(src: str, expected: str) -> None:
    assert run(src, DATA) == expected


@pytest.mark.parametrize(
    ("src", "data", "expected"),
    [
        pytest.param(
            "{{ .Role }}/{{ .ToolCallID }}",
            {"role": "user", "tool_call_id": "c1"},
            "user/c1",
            id="snake-case-keys",
        ),
        pytest.param("{{ .ToolCalls }}", {"toolcalls": [1]}, "[1]", id="lowercase-keys"),
        pytest.param("{{ .Role }}", {"Role": "exact", "role": "snake"}, "exact", id="exact-key-wins"),
        pytest.param("{{ .role }}", {"role": "lower"}, "lower", id="lowercase-field-name"),
        pytest.param("{{ index . 1 }}", {1: "int-key"}, "int-key", id="non-string-keys-via-index"),
    ],
)
def test_mapping_lookup(src: str, data: dict[Any, Any], expected: str) -> None:
    assert run(src, data) == expected


@dataclass
class Fn:
    Name: str = "f"
    Arguments: dict[str, Any] = field(default_factory=dict)


@dataclass
class Call:
    ID: str = ""
    Function: Fn = field(default_factory=Fn)


class Obj:
    def __init__(self) -> None:
        self.tool_name = "snake"
        self._secret = "hidden"

    def Greet(self, who: str) -> str:
        return "hello " + who

    def __str__(self) -> str:
        return "OBJ"


@pytest.mark.parametrize(
    ("src", "data", "expected"),
    [
        pytest.param("{{ .ID }}:{{ .Function.Name }}", Call("c1"), "c1:f", id="dataclass-fields"),
        pytest.param(
            "{{ . }}", Call("c1", Fn("g", {"b": 1, "a": 2})), "{c1 {g map[a:2 b:1]}}", id="struct-print"
        ),
        pytest.param("{{ .ToolName }}", Obj(), "snake", id="attribute-snake-fallback"),
        pytest.param('{{ .Greet "bob" }}', Obj(), "hello bob", id="method-call"),
        pytest.param('{{ "ann" | .Greet }}', Obj(), "hello ann", id="method-piped"),
        pytest.param("{{ . }}", Obj(), "OBJ", id="stringer"),
        pytest.param("{{ if . }}yes{{ end }}", Call(), "yes", id="struct-is-true"),
    ],
)
def test_objects(src: str, data: Any, expected: str) -> None:
    assert run(src, data) == expected


@pytest.mark.parametrize(
    ("src", "data", "fragment"),
    [
        pytest.param(
            "{{ .Missing }}", Call(), "can't evaluate field Missing in type Call", id="missing-attribute"
        ),
        pytest.param(
            "{{ ._secret }}", Obj(), "can't evaluate field _secret in type Obj", id="private-attribute"
        ),
        pytest.param("{{ .Greet }}", Obj(), "wrong number of args for Greet", id="method-arity"),
        pytest.param(
            "{{ .upper }}", "text", "can't evaluate field upper in type string", id="no-str-methods"
        ),
        pytest.param(
            "{{ .ID 1 }}", Call(), "ID has arguments but cannot be invoked as function", id="field-with-args"
        ),
    ],
)
def test_object_errors(src: str, data: Any, fragment: str) -> None:
    with pytest.raises(TemplateError, match="executing") as exc:
        run(src, data)
    assert fragment in str(exc.value)


def test_recursion_is_bounded() -> None:
    src = '{{ define "r" }}x{{ template "r" . }}{{ end }}{{ template "r" . }}'
    with pytest.raises(TemplateError, match=rf"exceeded maximum template depth \({MAX_TEMPLATE_DEPTH}\)"):
        run(src)


@pytest.mark.parametrize(
    "src",
    [
        pytest.param("{{ range 10000000 }}x{{ end }}", id="range-int"),
        pytest.param("{{ range 100000000000000 }}{{ end }}", id="range-int-no-output"),
        pytest.param("{{ range $i := 10000000 }}{{ if $i }}{{ end }}{{ end }}", id="range-var"),
        pytest.param(
            '{{ define "t" }}{{ if lt (len .) 40 }}{{ template "t" (print . "x") }}'
            '{{ template "t" (print . "x") }}{{ end }}{{ end }}{{ template "t" "" }}',
            id="exponential-recursion",
        ),
        pytest.param("{{ range 3000 }}{{ range 3000 }}{{ end }}{{ end }}", id="nested-range"),
    ],
)
def test_execution_steps_are_bounded(src: str) -> None:
    """A request template cannot hold a worker: it stops with an error after MAX_STEPS steps."""
    with pytest.raises(TemplateError, match=f"exceeded the limit of {MAX_STEPS} execution steps"):
        run(src)


@pytest.mark.parametrize(
    "src",
    [
        pytest.param("{{ range 10 }}{{ $.Big }}{{ end }}", id="printed"),
        pytest.param(
            '{{ $s := .Big }}{{ range 10 }}{{ $s = printf "%s%s" $s $s }}{{ end }}',
            id="doubled-in-a-variable",
        ),
    ],
)
def test_output_size_is_bounded(src: str) -> None:
    with pytest.raises(TemplateError, match=f"output exceeds the limit of {MAX_OUTPUT} characters"):
        run(src, {"Big": "x" * (MAX_OUTPUT // 4)})


def test_limits_leave_large_normal_templates_alone() -> None:
    """A prompt as large as the body limit, and a 20,000-message chat, still render."""
    assert len(run("{{ .Prompt }}", {"Prompt": "x" * (32 << 20)})) == 32 << 20
    msgs = [{"Role": "user", "Content": "hi"}] * 20_000
    src = "{{ range .Messages }}<|{{ .Role }}|>{{ if .Content }}{{ .Content }}{{ end }}\n{{ end }}"
    assert run(src, {"Messages": msgs}).count("<|user|>") == 20_000


def test_recursion_with_base_case() -> None:
    src = '{{ define "count" }}{{ if . }}{{ len . }}{{ template "count" (slice . 1) }}{{ end }}{{ end }}'
    assert run(src + '{{ template "count" . }}', [1, 2, 3]) == "321"


def test_error_reports_line_and_column() -> None:
    with pytest.raises(TemplateError) as exc:
        run("line one\n  {{ .A.B }}", {"A": None})
    assert str(exc.value).startswith('template: :2:7: executing "" at <.A.B>:')


def test_output_is_not_reused_between_runs() -> None:
    tmpl = Template("{{ . }}", parse_trees("{{ . }}", BUILTINS))
    assert tmpl.execute("a") == "a"
    assert tmpl.execute("b") == "b"


@pytest.mark.parametrize(
    ("name", "snake"),
    [
        ("Role", "role"),
        ("ToolCallID", "tool_call_id"),
        ("ID", "id"),
        ("IsThinkSet", "is_think_set"),
        ("URLPath", "url_path"),
    ],
)
def test_snake_case(name: str, snake: str) -> None:
    assert snake_case(name) == snake
