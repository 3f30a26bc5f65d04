from __future__ import annotations

import pytest

from llamita.server.engine.sampling import TextStream, text_tokens


def run(stops: list[str], pieces: list[bytes]) -> tuple[list[str], str, bool]:
    stream = TextStream(stops)
    out = [stream.push(p) for p in pieces]
    out.append(stream.flush())
    return out, stream.text, stream.stopped


CASES = [
    ("no-stop", [], [b"ab", b"cd"], ["ab", "cd", ""], "abcd", False),
    ("stop-inside", ["END"], [b"abEN", b"Dzz"], ["ab", "", ""], "ab", True),
    ("false-alarm", ["END"], [b"abEN", b"x"], ["ab", "ENx", ""], "abENx", False),
    ("held-until-flush", ["END"], [b"abE"], ["ab", "E"], "abE", False),
    ("split-utf8", [], [b"\xc3", b"\xa9t\xc3\xa9"], ["", "été", ""], "été", False),
    ("stop-spanning-tokens", ["\n\n"], [b"line\n", b"\nmore"], ["line", "", ""], "line", True),
    ("two-stops-first-wins", ["b", "a"], [b"xab"], ["x", ""], "x", True),
]


@pytest.mark.parametrize(
    ("stops", "pieces", "emitted", "text", "stopped"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_text_stream(stops, pieces, emitted, text, stopped) -> None:
    out, full, was_stopped = run(stops, pieces)
    assert "".join(out) == text == full
    assert out == emitted
    assert was_stopped is stopped


def test_text_stream_names_the_stop_that_matched() -> None:
    """The earliest stop in the text is the one that stopped it (Anthropic's ``stop_sequence``)."""
    for stops in (["b", "a"], ["a", "b"]):
        stream = TextStream(stops)
        stream.push(b"xab")
        assert stream.matched == "a"
    stream = TextStream(["END"])
    stream.push(b"abE")
    assert stream.flush() == "E" and stream.matched == ""


PIECES = {1: b"ab", 2: b"EN", 3: b"Dzz", 4: b"cd", 5: b"", 6: "é".encode()}


def fake_tokenize(text: str, add_bos: bool, special: bool) -> list[int]:
    return [100 + ord(c) for c in text]


@pytest.mark.parametrize(
    ("tokens", "text", "expected"),
    [
        ([1, 4], "abcd", [1, 4]),  # nothing was cut
        ([1, 2, 3], "ab", [1]),  # the stop "END" spans two tokens: both go
        ([1, 2, 3], "abE", [1, 100 + ord("E")]),  # a token cut inside: its kept part again
        ([5, 1, 2], "ab", [5, 1]),  # a control token (no text) before the stop stays
        ([6, 1], "é", [6]),
    ],
)
def test_text_tokens(tokens: list[int], text: str, expected: list[int]) -> None:
    assert text_tokens(tokens, text, PIECES.__getitem__, fake_tokenize) == expected
