"""Lexer: token boundaries, trim markers, comments, literals and error tokens follow Go's scanner."""

from __future__ import annotations

import pytest

from llamita.server.template.lexer import T, Token, go_quote, lex


def tokens(src: str) -> list[tuple[str, str]]:
    return [(tok.type.name, tok.val) for tok in lex(src) if tok.type is not T.EOF]


def kinds(src: str) -> list[str]:
    return [kind for kind, _ in tokens(src) if kind != "SPACE"]


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        pytest.param("hello", [("TEXT", "hello")], id="text-only"),
        pytest.param("", [], id="empty"),
        pytest.param("{{.X}}", [("LEFT_DELIM", "{{"), ("FIELD", ".X"), ("RIGHT_DELIM", "}}")], id="field"),
        pytest.param(
            "{{ .A.B }}",
            [
                ("LEFT_DELIM", "{{"),
                ("SPACE", " "),
                ("FIELD", ".A"),
                ("FIELD", ".B"),
                ("SPACE", " "),
                ("RIGHT_DELIM", "}}"),
            ],
            id="field-chain-splits",
        ),
        pytest.param("a}}b", [("TEXT", "a}}b")], id="stray-right-delim-is-text"),
        pytest.param(
            "{{ . }}",
            [("LEFT_DELIM", "{{"), ("SPACE", " "), ("DOT", "."), ("SPACE", " "), ("RIGHT_DELIM", "}}")],
            id="dot",
        ),
        pytest.param(
            "{{$}}", [("LEFT_DELIM", "{{"), ("VARIABLE", "$"), ("RIGHT_DELIM", "}}")], id="root-variable"
        ),
        pytest.param(
            "{{$x.Y}}",
            [("LEFT_DELIM", "{{"), ("VARIABLE", "$x"), ("FIELD", ".Y"), ("RIGHT_DELIM", "}}")],
            id="variable-field",
        ),
        pytest.param(
            "{{\n.X\n}}",
            [("LEFT_DELIM", "{{"), ("SPACE", "\n"), ("FIELD", ".X"), ("SPACE", "\n"), ("RIGHT_DELIM", "}}")],
            id="newlines-inside-action",
        ),
    ],
)
def test_tokens(src: str, expected: list[tuple[str, str]]) -> None:
    assert tokens(src) == expected


@pytest.mark.parametrize(
    ("src", "texts"),
    [
        pytest.param("a  {{- .X -}}  b", ["a", "b"], id="both-sides"),
        pytest.param("a \n\t\r\n{{- .X }}", ["a"], id="left-trims-newlines"),
        pytest.param("{{ .X -}}\n\n  b  ", ["b  "], id="right-trims-leading-only"),
        pytest.param("a {{-3}} b", ["a ", " b"], id="minus-number-is-not-trim"),
        pytest.param("a {{- 3 -}} b", ["a", "b"], id="trim-around-number"),
        pytest.param("a {{/* note */}} b", ["a ", " b"], id="comment-dropped"),
        pytest.param("a {{- /* note */ -}} b", ["a", "b"], id="trimmed-comment"),
        pytest.param("a\n{{-\n.X\n-}}\nb", ["a", "b"], id="newline-after-trim-marker"),
        pytest.param("a {{ .X }} b", ["a ", " b"], id="no-trim"),
    ],
)
def test_trim_markers(src: str, texts: list[str]) -> None:
    assert [val for kind, val in tokens(src) if kind == "TEXT"] == texts


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        pytest.param('{{ "a\\"b" }}', [("STRING", '"a\\"b"')], id="quoted-string"),
        pytest.param("{{ `x\ny` }}", [("RAW_STRING", "`x\ny`")], id="raw-string-spans-lines"),
        pytest.param("{{ 'c' '\\n' }}", [("CHAR_CONSTANT", "'c'"), ("CHAR_CONSTANT", "'\\n'")], id="chars"),
        pytest.param(
            "{{ 1 -2 +3 0x1F 1.5e3 .5 1_000 }}",
            [("NUMBER", v) for v in ("1", "-2", "+3", "0x1F", "1.5e3", ".5", "1_000")],
            id="numbers",
        ),
        pytest.param(
            "{{ true false nil }}", [("BOOL", "true"), ("BOOL", "false"), ("NIL", "nil")], id="constants"
        ),
        pytest.param(
            "{{ $x := .A }}", [("VARIABLE", "$x"), ("DECLARE", ":="), ("FIELD", ".A")], id="declaration"
        ),
        pytest.param("{{ $x = 2 }}", [("VARIABLE", "$x"), ("ASSIGN", "="), ("NUMBER", "2")], id="assignment"),
        pytest.param(
            "{{ (len .X) | printf }}",
            [
                ("LEFT_PAREN", "("),
                ("IDENTIFIER", "len"),
                ("FIELD", ".X"),
                ("RIGHT_PAREN", ")"),
                ("PIPE", "|"),
                ("IDENTIFIER", "printf"),
            ],
            id="parens-and-pipe",
        ),
        pytest.param(
            "{{ range $i, $x := .L }}",
            [
                ("RANGE", "range"),
                ("VARIABLE", "$i"),
                ("CHAR", ","),
                ("VARIABLE", "$x"),
                ("DECLARE", ":="),
                ("FIELD", ".L"),
            ],
            id="range-declarations",
        ),
        pytest.param("{{ é_1 }}", [("IDENTIFIER", "é_1")], id="unicode-identifier"),
    ],
)
def test_literals_and_operators(src: str, expected: list[tuple[str, str]]) -> None:
    inner = [t for t in tokens(src) if t[0] not in ("LEFT_DELIM", "RIGHT_DELIM", "SPACE")]
    assert inner == expected


def test_keywords() -> None:
    src = "".join(
        "{{" + k + "}}"
        for k in ("if", "else", "end", "range", "with", "define", "template", "block", "break", "continue")
    )
    assert [k for k in kinds(src) if k not in ("LEFT_DELIM", "RIGHT_DELIM")] == [
        "IF",
        "ELSE",
        "END",
        "RANGE",
        "WITH",
        "DEFINE",
        "TEMPLATE",
        "BLOCK",
        "BREAK",
        "CONTINUE",
    ]


@pytest.mark.parametrize(
    ("src", "message"),
    [
        pytest.param("{{ .X", "unclosed action", id="unclosed-action"),
        pytest.param("{{/* note", "unclosed comment", id="unclosed-comment"),
        pytest.param("{{/* note */ }}", "comment ends before closing delimiter", id="comment-not-at-delim"),
        pytest.param('{{ "abc }}', "unterminated quoted string", id="unterminated-string"),
        pytest.param('{{ "a\nb" }}', "unterminated quoted string", id="newline-in-string"),
        pytest.param("{{ `abc }}", "unterminated raw quoted string", id="unterminated-raw"),
        pytest.param("{{ 'a }}", "unterminated character constant", id="unterminated-char"),
        pytest.param("{{ .X@ }}", "bad character U+0040 '@'", id="bad-character-after-field"),
        pytest.param("{{ \u2603 }}", "unrecognized character in action: U+2603 '\u2603'", id="unrecognized"),
        pytest.param("{{ :x }}", "expected :=", id="lonely-colon"),
        pytest.param("{{ ) }}", "unexpected right paren U+0029 ')'", id="right-paren"),
        pytest.param("{{ ( }}", "unclosed left paren", id="left-paren"),
        pytest.param("{{ 1a }}", 'bad number syntax: "1a"', id="bad-number"),
    ],
)
def test_error_tokens(src: str, message: str) -> None:
    last = lex(src)[-1]
    assert last.type is T.ERROR
    assert last.val == message


def test_lines_count_from_token_start() -> None:
    toks = lex("a\nb{{ .X }}\n{{\n.Y }}")
    lines = {tok.val: tok.line for tok in toks if tok.type in (T.FIELD, T.TEXT)}
    assert lines == {"a\nb": 1, ".X": 2, "\n": 2, ".Y": 4}
    assert toks[-1].type is T.EOF


@pytest.mark.parametrize(
    ("tok", "text"),
    [
        pytest.param(Token(T.EOF, 0, "", 1), "EOF", id="eof"),
        pytest.param(Token(T.ERROR, 0, "boom", 1), "boom", id="error"),
        pytest.param(Token(T.IF, 0, "if", 1), "<if>", id="keyword"),
        pytest.param(Token(T.DOT, 0, ".", 1), "<.>", id="dot-is-keyword"),
        pytest.param(Token(T.CHAR, 0, "}", 1), '"}"', id="short"),
        pytest.param(Token(T.TEXT, 0, "0123456789abc", 1), '"0123456789"...', id="long-truncated"),
    ],
)
def test_token_str_matches_go(tok: Token, text: str) -> None:
    assert str(tok) == text


@pytest.mark.parametrize(
    ("raw", "quoted"),
    [
        ("plain", '"plain"'),
        ('say "hi"\\', '"say \\"hi\\"\\\\"'),
        ("tab\tnl\n", '"tab\\tnl\\n"'),
        ("\x01\x7f", '"\\x01\\x7f"'),
        ("é☃", '"é☃"'),
        ("\u2028", '"\\u2028"'),
    ],
    ids=[
        "plain",
        "quotes-and-backslash",
        "short-escapes",
        "control-hex",
        "printable-unicode",
        "line-separator",
    ],
)
def test_go_quote(raw: str, quoted: str) -> None:
    assert go_quote(raw) == quoted
