"""``llamita ps`` and ``llamita stop``: what is loaded, and unloading it, as Ollama's CLI does."""

from __future__ import annotations

import argparse
import datetime as dt
import math
from collections.abc import Iterator
from typing import Any, Protocol

from llamita.server.client import ResponseError

from .commands import CommandError
from .fmt import human_bytes, human_time, parse_time, table

HEADER = ["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]


class PsClient(Protocol):
    def ps(self) -> list[dict[str, Any]]: ...
    def show(self, model: str, verbose: bool = False) -> dict[str, Any]: ...
    def generate(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]: ...


def processor(size: int, size_vram: int) -> str:
    """Where the model's memory lives; a split is shown CPU first, rounded like Go's math.Round."""
    if size_vram == 0:
        return "100% CPU"
    if size_vram == size:
        return "100% GPU"
    if size_vram > size or size == 0:
        return "Unknown"
    cpu = math.floor((size - size_vram) / size * 100 + 0.5)
    return f"{cpu}%/{100 - cpu}% CPU/GPU"


def until(expires_at: str | None, now: dt.datetime | None = None) -> str:
    """UNTIL: "4 minutes from now", "Forever" (keep_alive < 0), or "Stopping..." once past.

    A missing timestamp is Go's zero time, which lies in the past, hence "Stopping...".
    """
    now = now or dt.datetime.now(dt.UTC)
    when = parse_time(expires_at) if expires_at else dt.datetime.min.replace(tzinfo=dt.UTC)
    if now > when:
        return "Stopping..."
    return human_time(when, now)


def rows(models: list[dict[str, Any]], prefix: str = "", now: dt.datetime | None = None) -> list[list[str]]:
    out = []
    for m in models:
        if prefix and not m.get("name", "").startswith(prefix):
            continue
        size = int(m.get("size", 0))
        out.append(
            [
                m.get("name", ""),
                m.get("digest", "")[:12],
                human_bytes(size),
                processor(size, int(m.get("size_vram", 0))),
                str(m.get("context_length", 0)),
                until(m.get("expires_at"), now),
            ]
        )
    return out


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ps", help="list running models")
    p.add_argument("prefix", nargs="?", default="", help="only models whose name starts with this")
    p = sub.add_parser("stop", help="stop a running model")
    p.add_argument("model")


def ps(client: PsClient, args: argparse.Namespace) -> int:
    print(table(HEADER, rows(client.ps(), args.prefix)))
    return 0


def stop(client: PsClient, args: argparse.Namespace) -> int:
    """Ollama stops a model with an empty generate and ``keep_alive: 0``, after checking it exists.

    A model that exists but is not loaded is not an error (the server just has nothing to do).
    """
    try:
        client.show(args.model)
        for _ in client.generate({"model": args.model, "prompt": "", "keep_alive": "0s"}):
            pass
    except ResponseError as e:
        if "not found" in str(e):
            raise CommandError(f'couldn\'t find model "{args.model}" to stop') from e
        raise
    return 0
