from __future__ import annotations

import pytest

from llamita.server.engine.sampling import TextStream


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
