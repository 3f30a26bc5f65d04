"""Acceptance counters: what the editor did with the inline completions we offered.

Only the editor knows whether a suggestion was shown, accepted whole or accepted in part, so the
language server takes Copilot's LSP names for those events:

- ``textDocument/didShowCompletion`` ``{item}``: the item was shown as ghost text;
- ``textDocument/didPartiallyAcceptCompletion`` ``{item, acceptedLength}``: part of it was kept;
- a full accept runs the item's ``command`` (LSP's standard hook for "this item was accepted"):
  :data:`ACCEPT_COMMAND` through ``workspace/executeCommand``.

Each item we hand out carries its labels in that command's arguments (:func:`item_labels`): the
model, the document's language and the length of the text, numbers and names only. The counts are
kept per (model, language) in memory and posted as deltas to the model server's
``/api/llamita/completion-events`` every :data:`INTERVAL` seconds and at shutdown, off the request
path. Code text is never stored or sent. A server without the route (plain Ollama answers 404)
turns posting off for the session, logged once; a failed post keeps its counts for the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llamita.lsp.client import ModelServerError, OllamaClient, ResponseError

log = logging.getLogger("llamita.lsp.acceptance")

ACCEPT_COMMAND = "llamita.acceptCompletion"
DID_SHOW = "textDocument/didShowCompletion"
DID_PARTIALLY_ACCEPT = "textDocument/didPartiallyAcceptCompletion"
INTERVAL = 30.0  # seconds between posts (the ``acceptanceIntervalSeconds`` setting)
MIN_INTERVAL = 0.1
FLUSH_TIMEOUT = 3.0  # the last post at shutdown must not hold the editor up
UNKNOWN = "unknown"
MAX_LABEL = 64  # the server's bound on a language id (and far more than a model name needs here)
MAX_MODEL = 200
MAX_LENGTH = 100_000  # characters of one item: a report must stay under the server's per-field bound
FIELDS = ("shown", "accepted", "partially_accepted", "accepted_chars")


@dataclass(frozen=True)
class Labels:
    """What an event is counted under, read back from the item the editor echoes."""

    model: str
    language: str
    length: int  # characters of the item's text: a full accept keeps all of them


def command_arguments(model: str, language: str, text: str) -> list[dict[str, Any]]:
    """The ``command.arguments`` of an item we offer: labels and a length, never the text."""
    return [{"model": model, "language": language or UNKNOWN, "length": len(text)}]


def item_labels(item: Any, fallback_model: str) -> Labels:
    """The labels of an item (a JSON object from the client, or an lsprotocol/pygls object)."""
    command = _get(item, "command")
    arguments = _get(command, "arguments") if command is not None else None
    first = arguments[0] if isinstance(arguments, list | tuple) and arguments else None
    return labels_of(first, fallback_model)


def labels_of(argument: Any, fallback_model: str) -> Labels:
    """The labels in one command argument; what is missing or malformed falls back."""
    return Labels(
        model=_label(_get(argument, "model"), MAX_MODEL) or fallback_model,
        language=_label(_get(argument, "language"), MAX_LABEL) or UNKNOWN,
        length=clamp_length(_get(argument, "length")),
    )


def _label(value: Any, limit: int) -> str:
    """``value`` if the server would take it as a label, else "" (a 400 would lose the whole row)."""
    ok = isinstance(value, str) and value.strip() and len(value) <= limit and value.isprintable()
    return value.strip() if ok else ""


def clamp_length(value: Any) -> int:
    """A character count from the client: a non-negative int, at most :data:`MAX_LENGTH`."""
    if not isinstance(value, int) or isinstance(value, bool):
        return 0
    return min(max(value, 0), MAX_LENGTH)


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


class AcceptanceCounter:
    """Counts since the last post, per (model, language)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], dict[str, int]] = {}

    def _row(self, labels: Labels) -> dict[str, int]:
        return self._counts.setdefault((labels.model, labels.language), dict.fromkeys(FIELDS, 0))

    def shown(self, labels: Labels) -> None:
        self._row(labels)["shown"] += 1

    def accepted(self, labels: Labels) -> None:
        row = self._row(labels)
        row["accepted"] += 1
        row["accepted_chars"] += labels.length

    def partially_accepted(self, labels: Labels, accepted_length: int) -> None:
        row = self._row(labels)
        row["partially_accepted"] += 1
        row["accepted_chars"] += max(0, accepted_length)

    def take(self) -> dict[tuple[str, str], dict[str, int]]:
        """The counts so far, leaving zero behind."""
        taken, self._counts = self._counts, {}
        return taken

    def give_back(self, counts: dict[tuple[str, str], dict[str, int]]) -> None:
        """Counts a post could not deliver, added to those since."""
        for key, row in counts.items():
            mine = self._counts.setdefault(key, dict.fromkeys(FIELDS, 0))
            for field in FIELDS:
                mine[field] += row[field]


class AcceptanceReporter:
    """Posts the counter's deltas in the background, and once more at :meth:`close`."""

    def __init__(
        self, client: OllamaClient, log_line: Callable[[str], None], interval: float = INTERVAL
    ) -> None:
        self.client = client
        self.counter = AcceptanceCounter()
        self.interval = interval
        self.enabled = True
        self._log_line = log_line
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._loop())

    def reset(self) -> None:
        """Another server URL: it may have the route even if the last one did not."""
        self.enabled = True

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), max(self.interval, MIN_INTERVAL))
            await self.flush()  # a flush under way when close() is called finishes, then one more
            if self._stop.is_set():
                return

    async def flush(self) -> None:
        """Post every non-empty row; keeps the counts of a post that failed for the next one."""
        async with self._lock:
            if not self.enabled:
                self.counter.take()
                return
            pending = {k: v for k, v in self.counter.take().items() if any(v.values())}
            try:
                await self._post(pending)
            except asyncio.CancelledError:
                self.counter.give_back(pending)
                raise

    async def _post(self, pending: dict[tuple[str, str], dict[str, int]]) -> None:
        """Post the rows one by one, removing each from ``pending`` once it is settled."""
        for (model, language), row in list(pending.items()):
            try:
                await self.client.completion_events({"model": model, "language": language, **row})
            except ResponseError as e:
                if e.status == 404:
                    self.enabled = False
                    pending.clear()
                    self._log_line(
                        f"acceptance counters are off: {self.client.base_url} has no "
                        "/api/llamita/completion-events (not llamita?)"
                    )
                    return
                log.warning("acceptance counters for %s/%s rejected: %s", model, language, e)
            except ModelServerError as e:
                log.info("acceptance counters not posted (kept for later): %s", e)
                self.counter.give_back(pending)
                pending.clear()
                return
            del pending[(model, language)]  # posted, or rejected (a 400 would fail again)

    async def close(self) -> None:
        """Stop the timer and post what is left, bounded by :data:`FLUSH_TIMEOUT`."""
        self._stop.set()
        task, self._task = self._task, None
        try:
            await asyncio.wait_for(self.flush() if task is None else task, FLUSH_TIMEOUT)
        except TimeoutError:
            log.info("acceptance counters not posted at shutdown: the server did not answer in time")
