"""Tests for llamita.server.model.modelfile: Ollama's Modelfile grammar, String() and CreateRequest."""

from __future__ import annotations

import codecs
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from llamita.server.model.modelfile import (
    Command,
    CreatePlan,
    Modelfile,
    ModelfileError,
    parse,
    quote,
    to_create_request,
)

C = Command
INVALID_COMMAND = (
    'command must be one of "from", "license", "template", "system", "adapter", "draft", '
    '"renderer", "parser", "parameter", "message", or "requires"'
)
INVALID_ROLE = 'message role must be one of "system", "user", or "assistant"'
GGUF = b"GGUF" + (3).to_bytes(4, "little") + bytes(64)


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


# --------------------------------------------------------------------------------------------
# to_create_request
# --------------------------------------------------------------------------------------------


def _plan(text: str, base: Path) -> CreatePlan:
    return to_create_request(parse(text), base)


def _write(path: Path, data: bytes = GGUF) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_create_from_model_name(tmp_path: Path) -> None:
    plan = _plan("FROM llama3.2:1b\nSYSTEM be brief\nTEMPLATE {{ .Prompt }}", tmp_path)
    assert plan.request == {"from": "llama3.2:1b", "template": "{{ .Prompt }}", "system": "be brief"}
    assert plan.files == plan.adapters == plan.draft_files == {}


@pytest.mark.parametrize("name", ["sha256:" + "ab" * 32, "hf.co/org/repo:Q4_K_M", "registry.io/ns/model"])
def test_create_from_reference_kept_as_name(tmp_path: Path, name: str) -> None:
    assert _plan(f"FROM {name}", tmp_path).request == {"from": name}


@pytest.mark.parametrize("form", ["./model.gguf", "model.gguf", "sub/../model.gguf", "{abs}"])
def test_create_from_gguf_file(tmp_path: Path, form: str) -> None:
    model = _write(tmp_path / "model.gguf")
    plan = _plan("FROM " + form.format(abs=model), tmp_path)
    assert plan.request == {}
    assert plan.files == {"model.gguf": model}


def test_create_relative_to_base_dir_not_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _write(tmp_path / "dir" / "m.gguf")
    monkeypatch.chdir(tmp_path)
    assert _plan("FROM ./m.gguf", Path("dir")).files == {"m.gguf": model}


def test_create_home_expansion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _write(tmp_path / "models" / "m.gguf")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert _plan("FROM ~/models/m.gguf", Path("/elsewhere")).files == {"m.gguf": model}


def test_create_unknown_user(tmp_path: Path) -> None:
    with pytest.raises(ModelfileError) as info:
        _plan("FROM ~no_such_user_llamita/m.gguf", tmp_path)
    assert (
        str(info.value)
        == "failed to find user 'no_such_user_llamita': user: unknown user no_such_user_llamita"
    )


@pytest.mark.parametrize("arg", ["./missing.gguf", "missing.GGUF", "/nowhere/m.gguf", "../up/m"])
def test_create_missing_path_is_an_error(tmp_path: Path, arg: str) -> None:
    with pytest.raises(ModelfileError) as info:
        _plan(f"FROM {arg}", tmp_path)
    expected = os.path.abspath(os.path.join(tmp_path, arg))
    assert str(info.value) == f"stat {expected}: no such file or directory"


def test_create_from_directory(tmp_path: Path) -> None:
    model_dir = tmp_path / "qwen"
    weights = _write(model_dir / "qwen.gguf")
    config = _write(model_dir / "config.json", b'{"a": 1}')
    nested = _write(model_dir / "tokenizer" / "config.json", b"{}")
    template = _write(model_dir / "chat_template.jinja", b"{{ messages }}")
    tokenizer = _write(model_dir / "tokenizer.model", b"\x00\x01binary")
    _write(model_dir / "README.md", b"ignored")
    plan = _plan("FROM ./qwen", tmp_path)
    assert plan.files == {
        "qwen.gguf": weights,
        "config.json": config,
        "tokenizer/config.json": nested,
        "chat_template.jinja": template,
        "tokenizer.model": tokenizer,
    }
    assert "from" not in plan.request


def test_create_directory_prefers_safetensors(tmp_path: Path) -> None:
    shard = _write(tmp_path / "model-00001-of-00001.safetensors", b"{}")
    nested = _write(tmp_path / "sub" / "model.safetensors", b"x")
    _write(tmp_path / "other.gguf")
    plan = _plan("FROM .", tmp_path)
    assert plan.files == {"model-00001-of-00001.safetensors": shard, "sub/model.safetensors": nested}


@pytest.mark.parametrize(
    ("files", "message"),
    [
        pytest.param({"notes.txt": b"hi"}, "no Modelfile or safetensors files found", id="no-weights"),
        pytest.param({"fake.gguf": b"just text"}, "no Modelfile or safetensors files found", id="text-gguf"),
        pytest.param(
            {"m.gguf": GGUF, "config.json": b"\x00\x01"},
            "invalid content type: expected application/octet-stream for {dir}/config.json",
            id="binary-json",
        ),
    ],
)
def test_create_directory_errors(tmp_path: Path, files: dict[str, bytes], message: str) -> None:
    for name, data in files.items():
        _write(tmp_path / "m" / name, data)
    with pytest.raises(ModelfileError) as info:
        _plan("FROM m", tmp_path)
    assert str(info.value) == message.format(dir=tmp_path / "m")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        pytest.param("outside/x.gguf", "insecure path: ../outside/x.gguf", id="outside"),
        pytest.param(
            ".cache/hub/x.gguf",
            "insecure path: ../.cache/hub/x.gguf\n\n"
            "Use --local-dir <dir> when downloading model to disable caching",
            id="hf-cache",
        ),
    ],
)
def test_create_directory_symlink_escape(tmp_path: Path, target: str, message: str) -> None:
    real = _write(tmp_path / target)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "x.gguf").symlink_to(real)
    with pytest.raises(ModelfileError) as info:
        _plan("FROM ./m", tmp_path)
    assert str(info.value) == message


def test_create_single_file_symlink_keeps_link_name(tmp_path: Path) -> None:
    real = _write(tmp_path / "blobs" / "sha256-abc")
    (tmp_path / "nice.gguf").symlink_to(real)
    assert _plan("FROM nice.gguf", tmp_path).files == {"nice.gguf": tmp_path / "nice.gguf"}


def test_create_several_froms_merge_files(tmp_path: Path) -> None:
    first = _write(tmp_path / "a" / "model.gguf")
    second = _write(tmp_path / "b" / "mmproj.gguf")
    plan = _plan("FROM ./a/model.gguf\nFROM ./b/mmproj.gguf\nFROM base:latest", tmp_path)
    assert plan.files == {"a/model.gguf": first, "b/mmproj.gguf": second}
    assert plan.request == {"from": "base:latest"}


def test_create_adapter_and_draft(tmp_path: Path) -> None:
    _write(tmp_path / "first.gguf")
    lora = _write(tmp_path / "lora.gguf")
    draft = _write(tmp_path / "draft.gguf")
    plan = _plan("FROM base\nADAPTER first.gguf\nADAPTER lora.gguf\nDRAFT ./draft.gguf", tmp_path)
    assert plan.adapters == {"lora.gguf": lora}  # a later ADAPTER replaces the earlier one
    assert plan.draft_files == {"draft.gguf": draft}
    assert plan.request == {"from": "base"}


@pytest.mark.parametrize("keyword", ["ADAPTER", "DRAFT"])
def test_create_adapter_or_draft_must_exist(tmp_path: Path, keyword: str) -> None:
    with pytest.raises(ModelfileError) as info:
        _plan(f"FROM base\n{keyword} missing-name", tmp_path)
    assert str(info.value) == f"stat {tmp_path / 'missing-name'}: no such file or directory"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("FROM ./m.gguf\nDRAFT ./m.gguf", id="draft-after"),
        pytest.param("DRAFT m.gguf\nFROM ./m.gguf", id="draft-before"),
        pytest.param("FROM ./m.gguf\nDRAFT ./link.gguf", id="via-symlink"),
    ],
)
def test_create_draft_must_differ_from_model(tmp_path: Path, text: str) -> None:
    _write(tmp_path / "m.gguf")
    (tmp_path / "link.gguf").symlink_to(tmp_path / "m.gguf")
    with pytest.raises(ModelfileError, match=r"^DRAFT must not reference the same local path as FROM: /"):
        _plan(text, tmp_path)


def test_create_parameters_license_messages(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    text = (
        "FROM base\n"
        "PARAMETER temperature 0.5\n"
        "PARAMETER stop <|a|>\n"
        "PARAMETER num_ctx 2048\n"
        "PARAMETER stop <|b|>\n"
        "PARAMETER num_ctx 4096\n"
        "PARAMETER mirostat 2\n"
        "PARAMETER use_mmap false\n"
        "LICENSE MIT\n"
        'LICENSE """Apache\n2.0"""\n'
        "MESSAGE user hi: there\n"
        "MESSAGE assistant hello\n"
        "RENDERER qwen3-coder\n"
        "PARSER qwen3-coder\n"
        "REQUIRES v0.14.1\n"
    )
    plan = _plan(text, tmp_path)
    assert plan.request == {
        "from": "base",
        "license": ["MIT", "Apache\n2.0"],
        "parameters": {"temperature": 0.5, "stop": ["<|a|>", "<|b|>"], "num_ctx": 4096, "use_mmap": False},
        "messages": [{"role": "user", "content": "hi: there"}, {"role": "assistant", "content": "hello"}],
        "renderer": "qwen3-coder",
        "parser": "qwen3-coder",
        "requires": "0.14.1",
    }
    assert "parameter mirostat is deprecated" in caplog.text


def test_create_empty_strings_are_omitted(tmp_path: Path) -> None:
    plan = _plan('FROM base\nSYSTEM first\nSYSTEM ""\nTEMPLATE """"""\nLICENSE ""', tmp_path)
    assert plan.request == {"from": "base", "license": [""]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("PARAMETER bogus 1", "unknown parameter 'bogus'", id="unknown"),
        pytest.param("PARAMETER numa true", "unknown parameter 'numa'", id="removed"),
        pytest.param("PARAMETER  stop x", "unknown parameter ''", id="empty-name"),
        pytest.param("PARAMETER num_ctx big", "invalid int value [big]", id="int"),
        pytest.param("PARAMETER top_p high", "invalid float value [high]", id="float"),
        pytest.param("PARAMETER use_mmap yes", "invalid bool value [yes]", id="bool"),
    ],
)
def test_create_parameter_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ModelfileError) as info:
        _plan(f"FROM base\n{text}", tmp_path)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("version", "sent"),
    [
        ("0.14.0", "0.14.0"),
        ("v0.14.0", "0.14.0"),
        ("1", "1"),
        ("1.2", "1.2"),
        ("1.2.3-rc.1", "1.2.3-rc.1"),
        ("1.2.3-0a.x-y", "1.2.3-0a.x-y"),
        ("1.2.3+build.007", "1.2.3+build.007"),
        ("1.2.3-beta+exp.sha.5114f85", "1.2.3-beta+exp.sha.5114f85"),
    ],
)
def test_create_requires_accepts(tmp_path: Path, version: str, sent: str) -> None:
    assert _plan(f"FROM base\nREQUIRES {version}", tmp_path).request["requires"] == sent


@pytest.mark.parametrize(
    "version",
    [
        "latest",
        "",
        "01.2.3",
        "1.02.3",
        "1.2.3.4",
        "1.2-rc1",
        "1.2.3-",
        "1.2.3-01",
        "1.2.3+",
        "vv1.0.0",
        "V1.0.0",
    ],
)
def test_create_requires_rejects(tmp_path: Path, version: str) -> None:
    with pytest.raises(ModelfileError) as info:
        _plan(f"FROM base\nREQUIRES {version}", tmp_path)
    assert str(info.value) == "requires must be a valid semver (e.g. 0.14.0)"


def test_with_digests_fills_every_map(tmp_path: Path) -> None:
    model = _write(tmp_path / "m.gguf")
    lora = _write(tmp_path / "l.gguf")
    draft = _write(tmp_path / "d.gguf")
    plan = _plan("FROM m.gguf\nADAPTER l.gguf\nDRAFT d.gguf\nSYSTEM s", tmp_path)
    digests = {model: "sha256:" + "1" * 64, lora: "sha256:" + "2" * 64, draft: "sha256:" + "3" * 64}
    assert plan.with_digests(digests) == {
        "system": "s",
        "files": {"m.gguf": digests[model]},
        "adapters": {"l.gguf": digests[lora]},
        "draft_files": {"d.gguf": digests[draft]},
    }
    assert "files" not in plan.request
    assert _plan("FROM base", tmp_path).with_digests({}) == {"from": "base"}
