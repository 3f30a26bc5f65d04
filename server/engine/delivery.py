"""Events leave the engine thread once per step, in one hand-over per event loop.

Handing each token to asyncio on its own (``call_soon_threadsafe`` per token) wakes the loop
once per token per stream.  Worse, on a machine whose cores all run llama.cpp's threads, the
loop's work (JSON, HTTP) then runs *while* the next step computes: three busy threads on two
cores, and ggml's threads spin at every barrier waiting for the one the OS took the core from,
which stretched a 135M model's decode step by about a third.  So the engine collects a step's
events, hands them over together, and (``wait_for_loop``) lets the loop finish streaming them
before it starts the next step, bounded by ``MAX_WAIT`` so a busy loop cannot stall decoding.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass

MAX_WAIT = 0.02  # seconds the engine waits for the event loop per step, at most


@dataclass
class _Parcel:
    put: Callable[[object], None]
    event: object
    on_lost: Callable[[], None]  # the loop is gone: nobody listens any more


class Outbox:
    """Per-step batching of events from the engine thread to the asyncio loops that wait on them."""

    def __init__(self, wait_for_loop: bool = False) -> None:
        self.wait_for_loop = wait_for_loop
        self._pending: dict[asyncio.AbstractEventLoop, list[_Parcel]] = {}
        self._lock = threading.Lock()  # ``post`` may come from an event loop (a rare abort path)

    def post(
        self,
        loop: asyncio.AbstractEventLoop,
        put: Callable[[object], None],
        event: object,
        on_lost: Callable[[], None],
    ) -> None:
        """Queue ``put(event)`` to run on ``loop`` at the next ``flush``."""
        with self._lock:
            self._pending.setdefault(loop, []).append(_Parcel(put, event, on_lost))

    def flush(self) -> None:
        """Hand every queued event to its loop; with ``wait_for_loop``, wait until they streamed."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        streamed = [threading.Event() for _ in pending]
        for (loop, parcels), done in zip(pending.items(), streamed, strict=True):
            try:
                loop.call_soon_threadsafe(_deliver, loop, parcels, done)
            except RuntimeError:  # the loop is closed
                done.set()
                for parcel in parcels:
                    parcel.on_lost()
        if self.wait_for_loop:
            for done in streamed:
                done.wait(MAX_WAIT)


def _deliver(loop: asyncio.AbstractEventLoop, parcels: list[_Parcel], done: threading.Event) -> None:
    """On the loop: wake the waiting streams, then (after they ran) tell the engine."""
    for parcel in parcels:
        parcel.put(parcel.event)
    # The streams' wake-ups were scheduled by the puts above, so this runs after them.
    loop.call_soon(done.set)
