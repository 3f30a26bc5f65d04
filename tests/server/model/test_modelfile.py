"""Tests for llamita.server.model.modelfile: Ollama's Modelfile grammar and String()."""

from __future__ import annotations

import codecs
from collections.abc import Callable

import pytest

from llamita.server.model.modelfile import Command, Modelfile, ModelfileError, parse, quote

C = Command
INVALID_COMMAND = (
    'command must be one of "from", "license", "template", "system", "adapter", "draft", '
    '"renderer", "parser", "parameter", "message", or "requires"'
)
INVALID_ROLE = 'message role must be one of "system", "user", or "assistant"'


# --------------------------------------------------------------------------------------------
# parse: accepted input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("FROM llama3.2", [C("model", "llama3.2")], id="from-name"),
        pytest.param("from llama3:8b-q4_K_M\n", [C("model", "llama3:8b-q4_K_M")], id="keyword-lowercase"),
        pytest.param("FrOm x", [C("model", "x")], id="keyword-mixed-case"),
        pytest.param("FROM\tx", [C("model", "x")], id="tab-after-keyword"),
        pytest.param("FROM     spaced out    ", [C("model", "spaced out")], id="value-trimmed"),
        pytest.param("FROM /what/is/the path ", [C("model", "/what/is/the path")], id="path-with-space"),
        pytest.param('FROM "  padded  "', [C("model", "  padded  ")], id="quoted-keeps-spaces"),
        pytest.param("FROM x # not a comment", [C("model", "x # not a comment")], id="hash-inside-value"),
        pytest.param("FROM ", [C("model", "")], id="empty-value-at-eof"),
        pytest.param("\n\n  \t\nFROM x\n\n", [C("model", "x")], id="blank-lines"),
        pytest.param(
            "PARAMETER stop x\nFROM base",
            [C("stop", "x"), C("model", "base")],
            id="from-not-first",
        ),
        pytest.param(
            "FROM a\nFROM b",
            [C("model", "a"), C("model", "b")],
            id="two-froms",
        ),
        pytest.param(
            "FROM x\nPARAMETER num_ctx 4096\nPARAMETER Top_K 5\nPARAMETER stop_2 a",
            [C("model", "x"), C("num_ctx", "4096"), C("Top_K", "5"), C("stop_2", "a")],
            id="parameter-name-keeps-case",
        ),
        pytest.param(
            "FROM x\nPARAMETER stop ### User: ",
            [C("model", "x"), C("stop", "### User:")],
            id="parameter-value-with-spaces",
        ),
        pytest.param(
            "FROM x\nPARAMETER  stop x",
            [C("model", "x"), C("", "stop x")],
            id="parameter-double-space-empty-name",
        ),
        pytest.param(
            "FROM x\nPARAMETER\tstop\t<|end|>",
            [C("model", "x"), C("stop", "<|end|>")],
            id="parameter-tabs",
        ),
        pytest.param(
            "FROM x\nTEMPLATE {{ .Prompt }}\nSYSTEM be brief\nADAPTER ./lora.gguf\nLICENSE MIT\n"
            "REQUIRES 0.14.0\nDRAFT ./small\nRENDERER qwen3\nPARSER qwen3",
            [
                C("model", "x"),
                C("template", "{{ .Prompt }}"),
                C("system", "be brief"),
                C("adapter", "./lora.gguf"),
                C("license", "MIT"),
                C("requires", "0.14.0"),
                C("draft", "./small"),
                C("renderer", "qwen3"),
                C("parser", "qwen3"),
            ],
            id="every-keyword",
        ),
        pytest.param(
            "FROM x\nMESSAGE system You parse files.\nMESSAGE user Hey!\nMESSAGE assistant Hello",
            [
                C("model", "x"),
                C("message", "system: You parse files."),
                C("message", "user: Hey!"),
                C("message", "assistant: Hello"),
            ],
            id="messages",
        ),
        pytest.param(
            'FROM x\nMESSAGE user """\nline one\nline two\n"""\n',
            [C("model", "x"), C("message", "user: \nline one\nline two\n")],
            id="message-multiline",
        ),
        pytest.param(
            "FROM x\nMESSAGE\tuser\thi",
            [C("model", "x"), C("message", "user: hi")],
            id="message-tabs",
        ),
    ],
)
def test_parse_accepts(text: str, expected: list[Command]) -> None:
    assert parse(text).commands == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            'SYSTEM """\nThis is a\nmultiline system.\n"""', "\nThis is a\nmultiline system.\n", id="triple"
        ),
        pytest.param('SYSTEM """one\ntwo"""', "one\ntwo", id="triple-tight"),
        pytest.param('SYSTEM """single line"""', "single line", id="triple-one-line"),
        pytest.param('SYSTEM """say "hi"\n"""', 'say "hi"\n', id="triple-with-quotes"),
        pytest.param('SYSTEM """ "a" """', ' "a" ', id="triple-keeps-inner-spaces"),
        pytest.param('SYSTEM """"""', "", id="triple-empty"),
        pytest.param('SYSTEM ""', "", id="double-empty"),
        pytest.param('SYSTEM "\nspans\nlines\n"', "\nspans\nlines\n", id="double-multiline"),
        pytest.param('SYSTEM "\'"', "'", id="single-quote-inside"),
        pytest.param("SYSTEM 'not quoted'", "'not quoted'", id="single-quotes-literal"),
        pytest.param('SYSTEM say "hi" now', 'say "hi" now', id="inner-quotes-unquoted"),
        pytest.param('SYSTEM ""x"', '"x', id="double-quote-edge"),
        pytest.param(
            'SYSTEM """\'\'"\'""\'""\'"\'\'\'\'\'""\'""\'"""',
            "''\"'\"\"'\"\"'\"'''''\"\"'\"\"'",
            id="triple-quote-soup",
        ),
        pytest.param('SYSTEM "a" b\n"c"', 'a" b\n"c', id="quote-closes-only-at-line-end"),
        pytest.param('SYSTEM "\n# not a comment\n"', "\n# not a comment\n", id="hash-inside-quotes"),
        pytest.param("SYSTEM a\tb", "a\tb", id="tab-kept"),
        pytest.param("SYSTEM a\x00b\x1bc\u00a0d\u200be", "abcde", id="non-printable-dropped"),
        pytest.param("SYSTEM héllo 👋 世界", "héllo 👋 世界", id="unicode-kept"),
    ],
)
def test_parse_quoting(text: str, expected: str) -> None:
    assert parse(f"FROM x\n{text}\n").commands == [C("model", "x"), C("system", expected)]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("# comment\nFROM x", id="first-line"),
        pytest.param("   \t# indented comment\nFROM x", id="indented"),
        pytest.param("FROM x\n# trailing comment", id="at-eof"),
        pytest.param("FROM x\n#PARAMETER stop y\n", id="commented-instruction"),
        pytest.param("#\n#\nFROM x\n#", id="empty-comments"),
    ],
)
def test_parse_comments(text: str) -> None:
    assert parse(text).commands == [C("model", "x")]


# --------------------------------------------------------------------------------------------
# parse: rejected input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        pytest.param("", "no FROM line", None, id="empty"),
        pytest.param("# only a comment\n", "no FROM line", None, id="only-comment"),
        pytest.param("PARAMETER stop x", "no FROM line", None, id="no-from"),
        pytest.param("\nFROM foo\nBADCOMMAND param1 value1\n", INVALID_COMMAND, 3, id="unknown-command"),
        pytest.param("FROM x\nFROMM y", INVALID_COMMAND, 2, id="misspelt"),
        pytest.param("FROM x\nFROM2 y", INVALID_COMMAND, 2, id="digit-in-keyword"),
        pytest.param("FROM x\n1FROM y", INVALID_COMMAND, 2, id="digit-first"),
        pytest.param("FROM x\nFROM#y", INVALID_COMMAND, 2, id="hash-in-keyword"),
        pytest.param("FROM\nx", INVALID_COMMAND, 2, id="keyword-then-newline-names-next-line"),
        pytest.param("FROM x\nSYSTEM\n", INVALID_COMMAND, 3, id="keyword-no-value"),
        pytest.param("FROM x\r\nBAD y", INVALID_COMMAND, 3, id="crlf-counts-twice"),
        pytest.param("FROM x\r\nSYSTEM\r\n", INVALID_COMMAND, 4, id="crlf-error-on-cr"),
        pytest.param("FROM x\r\n\r\nBAD y", INVALID_COMMAND, 5, id="crlf-blank-lines"),
        pytest.param("FROM x\nMESSAGE badguy hi", INVALID_ROLE, 2, id="bad-role"),
        pytest.param("FROM x\nMESSAGE User hi", INVALID_ROLE, 2, id="role-case-sensitive"),
        pytest.param("FROM x\nMESSAGE  user hi", INVALID_ROLE, 2, id="role-empty"),
        pytest.param("FROM x\nMESSAGE tool hi", INVALID_ROLE, 2, id="role-tool"),
        pytest.param("FROM x\nMESSAGE system\n", "unexpected EOF: system", None, id="message-no-value"),
        pytest.param("FROM x\nMESSAGE user1 hi", "unexpected EOF: user", None, id="role-with-digit"),
        pytest.param("FROM x\nMESSAGE system", "unexpected EOF", None, id="message-eof"),
        pytest.param("FROM x\nPARAMETER param1\n", "unexpected EOF: param1", None, id="parameter-no-value"),
        pytest.param("FROM x\nPARAMETER \n", "unexpected EOF: ", None, id="parameter-no-name"),
        pytest.param("FROM x\nPARAMETER top-k 1", "unexpected EOF: top", None, id="parameter-dash"),
        pytest.param("FROM x\nPARAMETER param1", "unexpected EOF", None, id="parameter-eof"),
        pytest.param("FROM x\nSYS", "unexpected EOF", None, id="keyword-eof"),
        pytest.param('FROM x\nSYSTEM "', "unexpected EOF", None, id="open-double-quote"),
        pytest.param('FROM x\nSYSTEM "abc\n', "unexpected EOF", None, id="unterminated-double"),
        pytest.param('FROM x\nSYSTEM """abc""\n\t\t', "unexpected EOF", None, id="triple-closed-by-two"),
        pytest.param('FROM x\nSYSTEM """"', "unexpected EOF", None, id="four-quotes"),
        pytest.param('FROM x\nSYSTEM """\nno end\n', "unexpected EOF", None, id="unterminated-triple"),
    ],
)
def test_parse_rejects(text: str, message: str, line: int | None) -> None:
    with pytest.raises(ModelfileError) as info:
        parse(text)
    expected = f"(line {line}): {message}" if line else message
    assert str(info.value) == expected
    assert info.value.line == line
    assert info.value.reason == message


# --------------------------------------------------------------------------------------------
# encodings and line endings
# --------------------------------------------------------------------------------------------

SAMPLE = 'FROM llama3\r\nSYSTEM """\r\nBe nice.\r\n"""\r\nPARAMETER stop ü\r\n'
SAMPLE_COMMANDS = [C("model", "llama3"), C("system", "\r\nBe nice.\r\n"), C("stop", "ü")]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(SAMPLE, id="str"),
        pytest.param("\ufeff" + SAMPLE, id="str-with-bom"),
        pytest.param(SAMPLE.encode(), id="utf8"),
        pytest.param(codecs.BOM_UTF8 + SAMPLE.encode(), id="utf8-bom"),
        pytest.param(codecs.BOM_UTF16_LE + SAMPLE.encode("utf-16-le"), id="utf16-le"),
        pytest.param(codecs.BOM_UTF16_BE + SAMPLE.encode("utf-16-be"), id="utf16-be"),
        pytest.param(bytearray(codecs.BOM_UTF16_LE + SAMPLE.encode("utf-16-le")), id="bytearray"),
    ],
)
def test_parse_encodings_and_crlf(data: str | bytes) -> None:
    # CRLF ends unquoted values cleanly; inside a multi-line quote the \r is kept verbatim.
    assert parse(data).commands == SAMPLE_COMMANDS


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda s: codecs.BOM_UTF16_LE + s.encode("utf-16-le"), id="utf16-le"),
        pytest.param(lambda s: codecs.BOM_UTF16_BE + s.encode("utf-16-be"), id="utf16-be"),
    ],
)
def test_parse_utf16_error_lines(encode: Callable[[str], bytes]) -> None:
    with pytest.raises(ModelfileError, match=r"^\(line 3\): message role"):
        parse(encode("FROM x\r\nMESSAGE robot hi\r\n"))


def test_parse_invalid_utf8_becomes_replacement_char() -> None:
    assert parse(b"FROM x\nSYSTEM a\xffb\n").commands[1] == C("system", "a\ufffdb")


def test_utf16_without_bom_is_not_guessed() -> None:
    # Without a BOM the bytes are read as UTF-8, so the NUL after "F" ends the keyword, as in
    # Ollama.
    with pytest.raises(ModelfileError) as info:
        parse("FROM x".encode("utf-16-le"))
    assert str(info.value) == f"(line 1): {INVALID_COMMAND}"


# --------------------------------------------------------------------------------------------
# serialisation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("plain", "plain", id="plain"),
        pytest.param("", "", id="empty"),
        pytest.param("a b", "a b", id="inner-space"),
        pytest.param(" lead", '" lead"', id="leading-space"),
        pytest.param("trail ", '"trail "', id="trailing-space"),
        pytest.param("two\nlines", '"two\nlines"', id="newline"),
        pytest.param('say "hi"', 'say "hi"', id="quote-without-newline"),
        pytest.param('say\n"hi"', '"""say\n"hi""""', id="quote-and-newline"),
        pytest.param(' "x"', '""" "x""""', id="quote-and-leading-space"),
    ],
)
def test_quote(value: str, expected: str) -> None:
    assert quote(value) == expected


def test_str_writes_ollama_format() -> None:
    mf = Modelfile(
        [
            C("model", "/models/my model.gguf"),
            C("adapter", "lora.gguf"),
            C("template", "{{ .Prompt }}\n"),
            C("system", 'Say "hi".\n'),
            C("stop", "<|end|>"),
            C("num_ctx", "4096"),
            C("message", "user: hello there"),
            C("message", "assistant:  padded"),
            C("license", "MIT"),
            C("requires", "0.14.0"),
            C("draft", "./small"),
            C("renderer", "r"),
            C("parser", "p"),
            C("system", ""),
        ]
    )
    assert str(mf) == (
        "FROM /models/my model.gguf\n"
        "ADAPTER lora.gguf\n"
        'TEMPLATE "{{ .Prompt }}\n"\n'
        'SYSTEM """Say "hi".\n"""\n'
        "PARAMETER stop <|end|>\n"
        "PARAMETER num_ctx 4096\n"
        "MESSAGE user hello there\n"
        'MESSAGE assistant " padded"\n'
        "LICENSE MIT\n"
        "REQUIRES 0.14.0\n"
        "DRAFT ./small\n"
        "RENDERER r\n"
        "PARSER p\n"
        "SYSTEM \n"
    )
    assert str(Modelfile()) == ""


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            "FROM foo\nADAPTER adapter1\nLICENSE MIT\nPARAMETER param1 value1\nTEMPLATE template1\n"
            "MESSAGE system You are a file parser.\nMESSAGE user Hey there!\n",
            id="simple",
        ),
        pytest.param(
            'FROM foo\nMESSAGE system """\nYou are a store greeter. Always respond with "Hello!".\n"""\n',
            id="message-with-quotes",
        ),
        pytest.param(
            'FROM foo\nLICENSE """\nVery long legal text.\n"Oh look, a quote!"\n"""\n\nPARAMETER stop a\n',
            id="license-with-quotes",
        ),
        pytest.param('FROM foo\nSYSTEM ""\n', id="empty-system"),
        pytest.param('FROM foo\nSYSTEM "  padded  "\nTEMPLATE "\n{{ .Prompt }}\n"\n', id="padding"),
        pytest.param("FROM foo\r\nPARAMETER stop a\r\nPARAMETER stop b\r\n", id="crlf"),
        pytest.param('FROM foo\nMESSAGE user ""\nMESSAGE assistant """ "quoted" """', id="message-edges"),
        pytest.param("# c\nfrom foo\nparameter temperature 0.1\nsystem x # y", id="lowercase-and-comments"),
    ],
)
def test_round_trip(text: str) -> None:
    first = parse(text)
    second = parse(str(first))
    assert second == first
    assert str(second) == str(first)
