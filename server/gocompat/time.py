"""Go's ``time`` package where users and clients see it: ParseDuration, Duration.String, RFC3339.

Durations come in as ``--keepalive 5m`` or ``OLLAMA_KEEP_ALIVE=1h30m`` and go out in the
``--verbose`` stats block and the ``keep_alive`` a client sends; timestamps go out as
``modified_at`` / ``expires_at``.  Durations are seconds (float) on the way in and
nanoseconds (int) on the way out, the units their callers hold.
"""

from __future__ import annotations

import datetime as dt
import re

_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Go's ``time.ParseDuration``, in seconds ("1h30m", "300ms", "-1s"); ValueError otherwise."""
    s = text
    sign = 1.0
    if s and s[0] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    total, pos = 0.0, 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m:
            if re.fullmatch(r"[\d.]+", s[pos:]):
                raise ValueError(f'time: missing unit in duration "{text}"')
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def _frac(value: int, digits: int) -> str:
    """``value / 10**digits`` with trailing zeros of the fraction dropped (Go's fmtFrac)."""
    whole, rest = divmod(value, 10**digits)
    text = str(rest).rjust(digits, "0").rstrip("0")
    return f"{whole}.{text}" if text else str(whole)


def duration_string(ns: int) -> str:
    """Go's ``time.Duration.String`` ("1.234567s", "12.3456ms", "1m30s") of ``ns`` nanoseconds."""
    sign = "-" if ns < 0 else ""
    u = abs(int(ns))
    if u == 0:
        return "0s"
    if u < 1000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{_frac(u, 3)}µs"
    if u < 1_000_000_000:
        return f"{sign}{_frac(u, 6)}ms"
    hours, rest = divmod(u, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    text = _frac(rest, 9) + "s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


def rfc3339(timestamp: float) -> str:
    """Go's ``time.RFC3339Nano`` with the local offset, as Ollama prints ``modified_at``."""
    moment = dt.datetime.fromtimestamp(timestamp).astimezone()
    text = moment.isoformat(timespec="microseconds")
    head, _, rest = text.partition(".")
    frac, tz = rest[:6].rstrip("0"), rest[6:]
    if tz in ("+00:00", "-00:00"):
        tz = "Z"
    return f"{head}.{frac}{tz}" if frac else f"{head}{tz}"
