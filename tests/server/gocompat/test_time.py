"""Go's time formats: Duration.String (the stats block, keep_alive), ParseDuration, RFC3339."""

from __future__ import annotations

import pytest

from llamita.server.gocompat.time import duration_string


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
