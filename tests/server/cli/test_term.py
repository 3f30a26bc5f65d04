"""The terminal side of ``llamita run``: word wrapping, tool calls, the stats block, input."""

from __future__ import annotations

import io
import re

import pytest

from llamita.server.cli import term
from llamita.server.cli.term import WordWrapper

from .fakes import console


def test_summary_block_matches_ollama() -> None:
    metrics = {
        "total_duration": 1_234_567_000,
        "load_duration": 12_345_600,
        "prompt_eval_count": 26,
        "prompt_eval_duration": 130_000_000,
        "eval_count": 100,
        "eval_duration": 800_000_000,
    }
    assert term.summary(metrics) == (
        "total duration:       1.234567s\n"
        "load duration:        12.3456ms\n"
        "prompt eval count:    26 token(s)\n"
        "prompt eval duration: 130ms\n"
        "prompt eval rate:     200.00 tokens/s\n"
        "eval count:           100 token(s)\n"
        "eval duration:        800ms\n"
        "eval rate:            125.00 tokens/s\n"
    )


def test_summary_leaves_out_zero_fields() -> None:
    assert term.summary({"total_duration": 5, "eval_count": 3}) == (
        "total duration:       5ns\neval count:           3 token(s)\n"
    )


def render(raw: str) -> list[str]:
    """Apply the only escapes the wrapper emits (ESC[nD, ESC[K) to get what a terminal shows."""
    lines, col = [""], 0
    i = 0
    while i < len(raw):
        m = re.match(r"\x1b\[(\d*)([DK])", raw[i:])
        if m:
            if m.group(2) == "D":
                col -= int(m.group(1) or 1)
            else:
                lines[-1] = lines[-1][:col]
            i += m.end()
            continue
        ch = raw[i]
        if ch == "\n":
            lines.append("")
            col = 0
        else:
            line = lines[-1]
            lines[-1] = line[:col] + ch + line[col + 1 :]
            col += 1
        i += 1
    return [line.rstrip() for line in lines]


@pytest.mark.parametrize(
    ("chunks", "columns", "expected"),
    [
        (["hello world this is a test"], 20, ["hello world", "this is a test"]),
        (["hel", "lo wor", "ld this is a te", "st"], 20, ["hello world", "this is a test"]),
        (["one two\nthree four five six"], 20, ["one two", "three four", "five six"]),
        (["abcdefghijklmnopqrstuvwxyz"], 20, ["abcdefghijklmno", "pqrstuvwxyz"]),
        (["short"], 80, ["short"]),
    ],
    ids=["one-chunk", "split-chunks", "newline-resets", "long-word-breaks", "fits"],
)
def test_word_wrap(chunks: list[str], columns: int, expected: list[str]) -> None:
    c = console(tty=True, columns=columns)
    wrapper = WordWrapper(c, enabled=True)
    for chunk in chunks:
        wrapper.write(chunk)
    raw = c.out.getvalue()
    assert render(raw) == expected
    assert all(len(line) <= columns - 5 for line in render(raw))


def test_no_wrap_when_disabled_or_not_a_tty() -> None:
    text = "word " * 40
    for c, enabled in ((console(tty=True, columns=20), False), (console(tty=False, columns=20), True)):
        WordWrapper(c, enabled).write(text)
        assert c.out.getvalue() == text


def test_tool_calls_are_reported_not_run() -> None:
    calls = [{"function": {"name": "get_weather", "arguments": {"city": "Paris", "a": 1}}}]
    assert term.render_tool_calls(calls, plain=True) == (
        '  Model called a non-existent function \'get_weather()\' with arguments: {"a":1,"city":"Paris"}'
    )


# ----------------------------------------------------------------------------- stream input


def test_stream_input_reads_a_text_stream() -> None:
    echo = io.StringIO()
    read = term.stream_input(io.StringIO("one\r\ntwo\n"), echo)
    assert [read(">>> "), read("... ")] == ["one", "two"]
    with pytest.raises(EOFError):
        read(">>> ")
    assert echo.getvalue() == ">>> ... >>> "
