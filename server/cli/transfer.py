"""``llamita pull`` and ``llamita push``: progress bars over the server's NDJSON stream.

Rendering follows Ollama's CLI: a status line for each new status (``pulling manifest``,
``verifying sha256 digest``, ``writing manifest``, ``success``) and one bar per layer::

    pulling 4f6e1b9a2c3d: 100% ▕██████████████████▏ 98.0MB/98.0MB 45.1MB/s 00:00

with the size, speed and time left (tqdm).  Everything goes to stderr, as in Ollama; when
stderr is not a terminal each layer gets one plain line when it finishes instead of a bar.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import Any, Protocol, TextIO

from tqdm import tqdm

from .fmt import human_bytes
from .progress import byte_bar

BAR_FORMAT = "{desc}: {percentage:3.0f}% ▕{bar}▏ {n_fmt}B/{total_fmt}B {rate_fmt} {remaining}"


class Puller(Protocol):
    def pull(self, model: str, insecure: bool = False) -> Iterable[dict[str, Any]]: ...


class Pusher(Protocol):
    def push(self, model: str, insecure: bool = False) -> Iterable[dict[str, Any]]: ...


class ProgressView:
    """Turns progress events into bars and status lines; :meth:`close` finishes them."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.status = ""
        self._bar: tqdm[Any] | None = None
        self._digest = ""
        self._plain: tuple[str, int, int] | None = None  # (label, completed, total) without a tty

    def update(self, event: dict[str, Any]) -> None:
        digest = event.get("digest") or ""
        status = event.get("status") or ""
        if digest:
            self._layer(status, digest, int(event.get("total") or 0), int(event.get("completed") or 0))
        elif status and status != self.status:
            self._finish_layer()
            self.status = status
            print(status, file=self.stream, flush=True)

    def _layer(self, status: str, digest: str, total: int, completed: int) -> None:
        label = status or f"pulling {digest[7:19]}"
        if digest != self._digest:
            self._finish_layer()
            self._digest, self.status = digest, label
            if self.tty:
                self._bar = byte_bar(label, total, initial=completed, file=self.stream, bar_format=BAR_FORMAT)
        if self._bar is not None:
            self._bar.update(completed - self._bar.n)
        self._plain = (label, completed, total)

    def _finish_layer(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._plain is not None:
            label, completed, total = self._plain
            percent = 100 * completed // total if total else 100
            print(f"{label}: {percent}% {human_bytes(total)}", file=self.stream, flush=True)
        self._bar, self._plain, self._digest = None, None, ""

    def close(self) -> None:
        self._finish_layer()


def show_progress(events: Iterable[dict[str, Any]], stream: TextIO | None = None) -> None:
    view = ProgressView(stream)
    try:
        for event in events:
            view.update(event)
    finally:
        view.close()


def pull_model(client: Puller, model: str, insecure: bool = False) -> None:
    """Pull with progress on stderr (also used by ``run`` for a missing model)."""
    show_progress(client.pull(model, insecure))


def pull(client: Puller, args: argparse.Namespace) -> int:
    pull_model(client, args.model, args.insecure)
    return 0


def push(client: Pusher, args: argparse.Namespace) -> int:
    show_progress(client.push(args.model, args.insecure))
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("pull", help="pull a model from a registry")
    p.add_argument("model")
    p.add_argument("--insecure", action="store_true", help="use an insecure registry (http)")
    p = sub.add_parser("push", help="push a model to a registry")
    p.add_argument("model")
    p.add_argument("--insecure", action="store_true", help="use an insecure registry (http)")
