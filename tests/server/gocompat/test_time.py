"""Go's time formats: Duration.String (the stats block, keep_alive), ParseDuration, RFC3339."""

from __future__ import annotations

import datetime as dt

import pytest

from llamita.server.gocompat.time import duration_string, parse_duration, rfc3339


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (999, "999ns"),
        (1_500, "1.5µs"),
        (12_345_600, "12.3456ms"),
        (5_000_000, "5ms"),
        (1_000_000_000, "1s"),
        (1_234_567_000, "1.234567s"),
        (90 * 10**9, "1m30s"),
        (3600 * 10**9, "1h0m0s"),
        (3723_500_000_000, "1h2m3.5s"),
        (-1_500_000, "-1.5ms"),
    ],
    ids=lambda v: str(v),
)
def test_duration_string(ns: int, text: str) -> None:
    assert duration_string(ns) == text


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5m", 300), ("1h30m", 5400), ("300ms", 0.3), ("-1s", -1), ("0", 0), ("1.5h", 5400), ("2h45m30s", 9930)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"), [("300", "missing unit"), ("5x", "invalid duration"), ("", "invalid")]
)
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


def test_rfc3339_drops_trailing_zeros_and_keeps_the_offset() -> None:
    text = rfc3339(1_700_000_000.25)
    assert text.startswith(
        dt.datetime.fromtimestamp(1_700_000_000).astimezone().strftime("%Y-%m-%dT%H:%M:%S")
    )
    assert ".25" in text
    assert dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() == 1_700_000_000.25
    assert "." not in rfc3339(1_700_000_000.0)
