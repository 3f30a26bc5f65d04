"""Human-readable sizes, times and tables in the shapes Ollama's CLI prints."""

from __future__ import annotations

import datetime as dt
import math

KB, MB, GB, TB = 1000, 1000**2, 1000**3, 1000**4


def human_bytes(n: int) -> str:
    """SI units, integer above 10 ("98 MB"), one decimal below ("4.7 GB")."""
    for limit, unit in ((TB, "TB"), (GB, "GB"), (MB, "MB"), (KB, "KB")):
        if n >= limit:
            value = n / limit
            if value >= 10 or value == math.trunc(value):
                return f"{int(value)} {unit}"
            return f"{value:.1f} {unit}"
    return f"{n} B"


def human_duration(seconds: float) -> str:
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds // 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 14:
        return f"{hours // 24} days"
    if hours < 24 * 60:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 730:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds // 3600) // 24 // 365} years"


def human_time(when: dt.datetime, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    delta = (now - when).total_seconds()
    if delta / 86400 / 365 < -20:
        return "Forever"
    if delta < 0:
        return human_duration(-delta) + " from now"
    return human_duration(delta) + " ago"


def parse_time(text: str) -> dt.datetime:
    """RFC 3339 (with nanoseconds or Z) → aware datetime."""
    text = text.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        tz = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{tz}"
    return dt.datetime.fromisoformat(text)


def table(header: list[str], rows: list[list[str]]) -> str:
    """tablewriter as Ollama configures it: no borders, left aligned, 4-space padding."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("    ".join(cells).rstrip())
    return "\n".join(lines)
