"""Events leave the engine thread once per step, in one hand-over per event loop.

Handing each token to asyncio on its own (``call_soon_threadsafe`` per token) writes the
loop's self-pipe once per token per stream: at 32 decoding streams that socket write was the
largest share of the engine thread's own time (about 0.3 ms a token).  So the engine collects a
step's events and hands them over together, one wake-up per loop per step.

(Making the engine also wait for the loop to finish streaming a step before starting the next,
so that the loop's Python does not compete with llama.cpp's threads for the cores, was measured
on the 2-core box and made no difference to a stream's ms/token; it is not done.)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Parcel:
    put: Callable[[object], None]
    event: object
    on_lost: Callable[[], None]  # the loop is gone: nobody listens any more


class Outbox:
    """Per-step batching of events from the engine thread to the asyncio loops that wait on them."""

    def __init__(self) -> None:
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
        """Hand every queued event to its loop."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for loop, parcels in pending.items():
            try:
                loop.call_soon_threadsafe(_deliver, parcels)
            except RuntimeError:  # the loop is closed
                for parcel in parcels:
                    parcel.on_lost()


def _deliver(parcels: list[_Parcel]) -> None:
    """On the loop: wake the waiting streams."""
    for parcel in parcels:
        parcel.put(parcel.event)
