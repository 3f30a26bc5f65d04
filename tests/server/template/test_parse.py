"""Parser: tree shape, Go's error messages (checked against Go 1.19's text/template), Ollama's rules."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from llamita.server.template import DEFAULT_TEMPLATE, MAX_TEMPLATE_SIZE, TemplateError, parse
from llamita.server.template.funcs import BUILTINS
from llamita.server.template.lexer import T, parse_number, unquote
from llamita.server.template.nodes import (
    ActionNode,
    ChainNode,
    FieldNode,
    IfNode,
    RangeNode,
    TemplateNode,
    VariableNode,
)
from llamita.server.template.parse import MAX_NESTING, parse_trees


def tree_text(src: str, name: str = "") -> str:
    return str(parse_trees(src, BUILTINS)[name])


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        pytest.param("hello {{ .Name }}!", "hello {{.Name}}!", id="text-and-field"),
        pytest.param("{{ .A.B.C }}", "{{.A.B.C}}", id="field-chain"),
        pytest.param("{{ $.A }}", "{{$.A}}", id="root-variable-field"),
        pytest.param("{{ (index .L 0).Name }}", "{{(index .L 0).Name}}", id="chain-on-pipeline"),
        pytest.param('{{ .X | printf "%q" | len }}', '{{.X | printf "%q" | len}}', id="pipeline"),
        pytest.param("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}", "{{$x := 1}}{{$x = 2}}{{$x}}", id="declare-assign"),
        pytest.param(
            "{{ if .A }}a{{ else if .B }}b{{ else }}c{{ end }}",
            "{{if .A}}a{{else}}{{if .B}}b{{else}}c{{end}}{{end}}",
            id="else-if-chain",
        ),
        pytest.param(
            "{{ with .A }}a{{ else with .B }}b{{ end }}",
            "{{with .A}}a{{else}}{{with .B}}b{{end}}{{end}}",
            id="else-with-chain",
        ),
        pytest.param(
            "{{ range $i, $m := .L }}{{ if $i }}{{ continue }}{{ end }}{{ break }}{{ else }}none{{ end }}",
            "{{range $i, $m := .L}}{{if $i}}{{continue}}{{end}}{{break}}{{else}}none{{end}}",
            id="range-break-continue-else",
        ),
        pytest.param("{{/* gone */}}x", "x", id="comment-dropped"),
        pytest.param(
            "{{ 'a' }} {{ 0x1F }} {{ `r` }}", "{{'a'}} {{0x1F}} {{`r`}}", id="literals-keep-source-form"
        ),
        pytest.param('{{ template "t" . }}', '{{template "t" .}}', id="template-call"),
        pytest.param("{{ 3 | .S }}", "{{3 | .S}}", id="field-as-later-stage"),
        pytest.param("{{ .A | }}", "{{.A}}", id="trailing-pipe-allowed"),
    ],
)
def test_tree_round_trip(src: str, expected: str) -> None:
    assert tree_text(src) == expected


def test_field_and_variable_nodes_absorb_chains() -> None:
    root = parse_trees("{{ .A.B }}{{ $.C.D }}{{ (.E).F }}", BUILTINS)[""]
    pipes = [node.pipe.cmds[0].args[0] for node in root.nodes if isinstance(node, ActionNode)]
    assert isinstance(pipes[0], FieldNode) and pipes[0].ident == ["A", "B"]
    assert isinstance(pipes[1], VariableNode) and pipes[1].ident == ["$", "C", "D"]
    assert isinstance(pipes[2], ChainNode) and pipes[2].field == ["F"]


def test_define_and_block_make_trees() -> None:
    trees = parse_trees('{{ define "a" }}A{{ end }}{{ block "b" . }}B{{ end }}main', BUILTINS)
    assert set(trees) == {"", "a", "b"}
    assert str(trees["a"]) == "A"
    assert isinstance(trees[""].nodes[0], TemplateNode)


def test_redefining_an_empty_template_is_allowed() -> None:
    trees = parse_trees('{{ define "a" }} {{ end }}{{ define "a" }}A{{ end }}', BUILTINS)
    assert str(trees["a"]) == "A"


def test_branch_node_types() -> None:
    root = parse_trees("{{ if 1 }}{{ end }}{{ range .L }}{{ end }}", BUILTINS)[""]
    assert [type(n) for n in root.nodes] == [IfNode, RangeNode]


# Every message below is what Go's text/template reports for the same input.
@pytest.mark.parametrize(
    ("src", "message"),
    [
        pytest.param("{{ .Prompt ", "template: :1: unclosed action", id="unclosed-action"),
        pytest.param("{{ if .X }}abc", "template: :1: unexpected EOF", id="missing-end"),
        pytest.param("{{ end }}", "template: :1: unexpected {{end}}", id="stray-end"),
        pytest.param("{{ else }}", "template: :1: unexpected {{else}}", id="stray-else"),
        pytest.param("{{ $x }}", 'template: :1: undefined variable "$x"', id="undefined-variable"),
        pytest.param("{{ .A }", 'template: :1: unexpected "}" in operand', id="half-delimiter"),
        pytest.param("{{ nope }}", 'template: :1: function "nope" not defined', id="unknown-function"),
        pytest.param("{{ break }}", "template: :1: {{break}} outside {{range}}", id="break-outside-range"),
        pytest.param(
            "{{ if .A }}{{ continue }}{{ end }}",
            "template: :1: {{continue}} outside {{range}}",
            id="continue-in-if",
        ),
        pytest.param("{{ if }}{{ end }}", "template: :1: missing value for if", id="empty-if"),
        pytest.param("{{ }}", "template: :1: missing value for command", id="empty-action"),
        pytest.param("{{ | .A }}", 'template: :1: unexpected "|" in command', id="leading-pipe"),
        pytest.param(
            "{{ template .S }}", 'template: :1: unexpected ".S" in template clause', id="template-name"
        ),
        pytest.param('{{ define "x" }}{{ . }}', "template: :1: unexpected EOF", id="unterminated-define"),
        pytest.param(
            '{{ "x" }}{{ define "a" }}1{{ end }}{{ define "a" }}2{{ end }}',
            'template: :1: template: multiple definition of template "a"',
            id="duplicate-define",
        ),
        pytest.param(
            "line1\nline2 {{ .S }}\n{{ if .X }}\n{{ .Y }\n{{ end }}",
            'template: :4: unexpected "}" in operand',
            id="line-number",
        ),
        pytest.param(
            "{{ if .A }}{{ else }}{{ else }}{{ end }}",
            "template: :1: expected end; found {{else}}",
            id="double-else",
        ),
        pytest.param(
            "{{ range .L }}{{ else if .S }}{{ end }}",
            "template: :1: unexpected <if> in input",
            id="range-else-if",
        ),
        pytest.param(
            "{{ range $a, $b, $c := .L }}{{ end }}",
            "template: :1: too many declarations in range",
            id="three-range-vars",
        ),
        pytest.param(
            "{{ with $a, $b := .L }}{{ end }}",
            "template: :1: too many declarations in with",
            id="two-with-vars",
        ),
        pytest.param("{{ .S := 1 }}", 'template: :1: unexpected ":=" in operand', id="declare-field"),
        pytest.param("{{ true.X }}", 'template: :1: unexpected . after term "true"', id="field-of-literal"),
        pytest.param("{{ 1e400 }}", 'template: :1: illegal number syntax: "1e400"', id="float-overflow"),
        pytest.param("{{ 08 }}", 'template: :1: integer overflow: "08"', id="bad-octal"),
        pytest.param("{{ 'ab' }}", "template: :1: malformed character constant: 'ab'", id="long-char"),
        pytest.param('{{ "\\q" }}', "template: :1: invalid syntax", id="bad-escape"),
        pytest.param('a\n{{ "x\n}}', "template: :2: unterminated quoted string", id="lexer-error-line"),
        pytest.param(
            "{{ .A\n\n.B", "template: :3: unclosed action started at :1", id="unclosed-multiline-action"
        ),
        pytest.param('{{ "a" 1i }}', 'template: :1: complex constants are not supported: "1i"', id="complex"),
    ],
)
def test_rejected(src: str, message: str) -> None:
    with pytest.raises(TemplateError) as exc:
        parse(src)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    "src",
    [
        pytest.param('{{ template "x" }}', id="template-call-without-argument"),
        pytest.param('{{ define "x" }}{{ template "x" }}{{ end }}{{ template "x" . }}', id="inside-define"),
        pytest.param('{{ if .A }}{{ template "x" }}{{ end }}{{ define "x" }}{{ end }}', id="nested"),
    ],
)
def test_ollama_rejects_template_calls_without_argument(src: str) -> None:
    with pytest.raises(TemplateError, match=r"^undefined template specified$"):
        parse(src)


# Ollama's Vars(): identifiers from every tree, lower-cased, declarations and chains excluded.
@pytest.mark.parametrize(
    ("src", "expected"),
    [
        pytest.param("{{ .Prompt }}", ["prompt", "response"], id="prompt-gets-response"),
        pytest.param("{{ .System }} {{ .Prompt }}", ["prompt", "response", "system"], id="system-prompt"),
        pytest.param(
            "{{ with .Tools }}{{ . }}{{ end }} {{ .System }} {{ .Prompt }}",
            ["prompt", "response", "system", "tools"],
            id="with-tools",
        ),
        pytest.param(
            "{{ range .Messages }}{{ .Role }} {{ .Content }}{{ end }}",
            ["content", "messages", "role"],
            id="messages",
        ),
        pytest.param(
            "{{ range $i, $m := .Messages }}{{ $m.Role }}{{ $.System }}{{ end }}",
            ["$", "$m", "messages", "role", "system"],
            id="variables-not-declarations",
        ),
        pytest.param(
            '{{ define "x" }}{{ .Foo }}{{ end }}{{ template "x" .Bar }}',
            ["bar", "foo", "response"],
            id="defined-trees",
        ),
        pytest.param("{{ (index .Messages 0).Role }}", ["response"], id="chains-contribute-nothing"),
        pytest.param(
            '{{ if eq .Role "tool" }}{{ .ToolName }}{{ end }}',
            ["response", "role", "toolname"],
            id="condition",
        ),
        pytest.param('{{ block "b" .X }}{{ .Y }}{{ end }}', ["response", "x", "y"], id="block"),
        pytest.param("plain text", ["response"], id="no-actions"),
        pytest.param("{{ .Response }}", ["response"], id="response-only"),
        pytest.param("{{ .Suffix }}{{ .Prompt }}", ["prompt", "response", "suffix"], id="insert-capability"),
    ],
)
def test_vars(src: str, expected: list[str]) -> None:
    assert parse(src).vars() == expected


@pytest.mark.parametrize(
    ("src", "appended"),
    [
        pytest.param("{{ .Prompt }}", True, id="prompt-only"),
        pytest.param("plain", True, id="plain-text"),
        pytest.param("{{ .Prompt }} {{ .Response }}", False, id="has-response"),
        pytest.param("{{ range .Messages }}{{ end }}", False, id="has-messages"),
        pytest.param("{{ $.Response }}", False, id="response-as-variable-field"),
    ],
)
def test_response_node_appended(src: str, appended: bool) -> None:
    tmpl = parse(src)
    plain = parse_trees(src, BUILTINS)[""]
    assert len(tmpl.root.nodes) == len(plain.nodes) + appended
    if appended:
        assert str(tmpl.root.nodes[-1]) == "{{.Response}}"
    assert tmpl.source == src
    assert str(tmpl) == src


def test_default_template() -> None:
    assert DEFAULT_TEMPLATE.execute({"Prompt": "hi", "Response": ""}) == "hi"
    assert DEFAULT_TEMPLATE.vars() == ["prompt", "response"]


def test_contains_uses_source() -> None:
    tmpl = parse('{{ if eq .Role "tool" }}x{{ end }}{{ range .Messages }}{{ end }}')
    assert tmpl.contains('eq .Role "tool"')
    assert not tmpl.contains("Response")


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ('"plain"', "plain"),
        ('"a\\tb\\n"', "a\tb\n"),
        ('"\\x41\\101\\u00e9\\U0001F600"', "AAé😀"),
        ('"q\\"q"', 'q"q'),
        ("`raw\\n`", "raw\\n"),
        ("`a\r\nb`", "a\nb"),
    ],
    ids=["plain", "escapes", "hex-octal-unicode", "escaped-quote", "raw-no-escapes", "raw-drops-cr"],
)
def test_unquote(literal: str, value: str) -> None:
    assert unquote(literal) == value


@pytest.mark.parametrize(
    "literal", ['"\\q"', '"\\\'"', '"\\xZ1"', '"\\400"', '"\\uD800"', '"a', "`a`b`"], ids=str
)
def test_unquote_rejects(literal: str) -> None:
    with pytest.raises(ValueError):
        unquote(literal)


@pytest.mark.parametrize(
    ("text", "typ", "value"),
    [
        ("42", T.NUMBER, 42),
        ("-7", T.NUMBER, -7),
        ("0x1F", T.NUMBER, 31),
        ("0xE", T.NUMBER, 14),
        ("017", T.NUMBER, 15),
        ("0o17", T.NUMBER, 15),
        ("0b101", T.NUMBER, 5),
        ("1_000", T.NUMBER, 1000),
        ("1.0", T.NUMBER, 1.0),
        ("1e3", T.NUMBER, 1000.0),
        (".5", T.NUMBER, 0.5),
        ("0x1p-2", T.NUMBER, 0.25),
        ("'a'", T.CHAR_CONSTANT, 97),
        ("'\\n'", T.CHAR_CONSTANT, 10),
        ("'é'", T.CHAR_CONSTANT, 233),
        ("'\\x41'", T.CHAR_CONSTANT, 65),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_parse_number(text: str, typ: T, value: int | float) -> None:
    got = parse_number(text, typ)
    assert got == value
    assert type(got) is type(value)


NESTED: dict[str, Callable[[int], str]] = {
    "if": lambda n: "{{ if 1 }}" * n + "x" + "{{ end }}" * n,
    "with": lambda n: "{{ with 1 }}" * n + "x" + "{{ end }}" * n,
    "range": lambda n: "{{ range 1 }}" * n + "x" + "{{ end }}" * n,
    "block": lambda n: "".join(f'{{{{ block "b{i}" . }}}}' for i in range(n)) + "x" + "{{ end }}" * n,
    "else-if-chain": lambda n: "{{ if 0 }}" + "{{ else if 0 }}" * (n - 1) + "x{{ end }}",
    "parentheses": lambda n: "{{ " + "(" * n + "1" + ")" * n + " }}",
}


@pytest.mark.parametrize("nest", NESTED.values(), ids=NESTED.keys())
def test_nesting_is_bounded(nest: Callable[[int], str]) -> None:
    """Hostile nesting is a TemplateError, never a RecursionError (a 500 at the API)."""
    assert parse(nest(MAX_NESTING)).execute({}) is not None
    for depth in (MAX_NESTING + 1, 1000, 2000):
        with pytest.raises(TemplateError, match=rf"max nesting depth exceeded \({MAX_NESTING}\)"):
            parse(nest(depth))


def test_template_size_is_bounded() -> None:
    """Parsing costs microseconds per action, so a megabyte template is refused up front."""
    assert parse("x" * MAX_TEMPLATE_SIZE)
    with pytest.raises(TemplateError, match=f"over the limit of {MAX_TEMPLATE_SIZE}"):
        parse("{{ .X }}" * (1 << 17))
