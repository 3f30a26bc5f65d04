"""What asyncio code leaves for the engine thread: handled in arrival order, between steps.

The engine's inbox is a deque of these under its condition variable (see ``Engine.submit``,
``abort`` and ``call``); typed messages instead of tagged tuples, so ``Engine._handle`` can
``match`` on them.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from .request import Request


@dataclass(frozen=True)
class Add:
    """A new request (it supersedes the same session's older ones)."""

    request: Request


@dataclass(frozen=True)
class Abort:
    """The client is gone: finish the request, keep its KV for reuse."""

    request_id: int


@dataclass(frozen=True)
class Call:
    """Run ``fn`` on the engine thread (it owns the contexts) and answer through ``future``."""

    fn: Callable[[], object]
    future: Future[object]


Item = Add | Abort | Call
