"""``llamita usage``: requests, tokens and engine time per API key and model, from ``/api/usage``.

Two tables: the day window (today, UTC, unless ``--days N``) summed per key and model, and the
totals since the server started.  It reads the HTTP API like every other command, so it works
against a remote box with ``OLLAMA_HOST`` and an admin ``LLAMITA_API_KEY``.
"""

from __future__ import annotations

import argparse
from typing import Any, Protocol

from .commands import CommandError
from .fmt import table

HEADER = ["KEY", "MODEL", "REQUESTS", "PROMPT", "CACHED", "GENERATED", "ENGINE"]
COUNTERS = ("requests", "prompt_tokens", "cached_tokens", "generated_tokens", "engine_seconds")


class UsageClient(Protocol):
    def usage(self, **params: str | int) -> dict[str, Any]: ...


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("usage", help="show usage per API key and model")
    p.add_argument("--days", type=int, default=1, help="the last N days, today included (default 1: today)")
    p.add_argument("--key", help="only this key name ('-' for requests without a key)")
    p.add_argument("--model", help="only this model (its short name, e.g. smollm2:135m)")


def summed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Day rows summed per key and model, sorted by key then model."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        entry = out.setdefault((row["key"], row["model"]), {"key": row["key"], "model": row["model"]})
        for name in COUNTERS:
            entry[name] = entry.get(name, 0) + row.get(name, 0)
    return [out[k] for k in sorted(out)]


def lines(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            r["key"],
            r["model"],
            *(str(int(r.get(name, 0))) for name in COUNTERS[:-1]),
            f"{float(r.get('engine_seconds', 0)):.2f}s",
        ]
        for r in rows
    ]


def render(answer: dict[str, Any], days: int) -> str:
    window = "TODAY (UTC)" if days == 1 else f"LAST {days} DAYS (UTC)"
    return "\n".join(
        [
            window,
            table(HEADER, lines(summed(answer.get("days") or []))),
            "",
            f"SINCE START ({answer.get('since', '?')})",
            table(HEADER, lines(answer.get("totals") or [])),
        ]
    )


def usage(client: UsageClient, args: argparse.Namespace) -> int:
    if args.days < 1:
        raise CommandError("--days must be at least 1")
    params: dict[str, str | int] = {"days": args.days}
    if args.key:
        params["key"] = args.key
    if args.model:
        params["model"] = args.model
    print(render(client.usage(**params), args.days))
    return 0
