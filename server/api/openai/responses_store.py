"""Finished ``/v1/responses`` replies kept in memory, for ``previous_response_id`` and ``GET``.

The Responses API is stateful at OpenAI: a request may name an earlier response and continue
its conversation without resending it.  llamita keeps each stored response (the reply object
and the conversation that led to it, as native chat messages) in memory only, bounded in count
and age, so a long-running server never grows without limit and nothing touches the disk.  A
response requested with ``"store": false`` (what Codex sends: it resends the whole input each
turn) is not kept.  The store lives on ``app.state``, one per app.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette

Json = dict[str, Any]

MAX_RESPONSES = 1000
"""How many responses are kept.  A conversation needs only its last response, so even a busy
team box chains this many turns at once; the oldest goes first once it is full."""

MAX_AGE_S = 3600.0
"""How long a response is kept (seconds).  An agent continues a conversation within seconds or
minutes; after an hour the client gets OpenAI's ``previous_response_not_found`` and resends."""


@dataclass(frozen=True)
class StoredResponse:
    response: Json  # the reply object, as ``GET /v1/responses/{id}`` returns it
    messages: list[Json]  # the native conversation, instructions excluded (they are not inherited)


@dataclass
class ResponseStore:
    """Stored responses by id, oldest first; expired ones are dropped when the store is used."""

    max_entries: int = MAX_RESPONSES
    max_age_s: float = MAX_AGE_S
    clock: Callable[[], float] = time.monotonic
    _entries: OrderedDict[str, tuple[float, StoredResponse]] = field(default_factory=OrderedDict)

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    def put(self, response_id: str, stored: StoredResponse) -> None:
        self._expire()
        self._entries[response_id] = (self.clock(), stored)
        self._entries.move_to_end(response_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def get(self, response_id: str) -> StoredResponse | None:
        self._expire()
        entry = self._entries.get(response_id)
        return entry[1] if entry else None

    def _expire(self) -> None:
        deadline = self.clock() - self.max_age_s
        while self._entries:
            stamp, _ = next(iter(self._entries.values()))
            if stamp > deadline:
                return
            self._entries.popitem(last=False)


def response_store(app: Starlette) -> ResponseStore:
    """The app's store, made on first use (handlers run on one event loop, so no race)."""
    store = getattr(app.state, "responses", None)
    if store is None:
        store = app.state.responses = ResponseStore()
    return store
