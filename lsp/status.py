"""User-facing status: one clear warning per problem, not one per keystroke.

An unreachable model server or a missing model would otherwise produce a popup for every completion
request. A problem is shown once (``window/showMessage``) and then only logged until it is resolved,
after which a recurrence is shown again.
"""

from __future__ import annotations

from collections.abc import Callable


class Status:
    def __init__(self, log: Callable[[str], None], warn: Callable[[str], None]) -> None:
        self._log = log
        self._warn = warn
        self._open: set[str] = set()

    def info(self, message: str) -> None:
        self._log(message)

    def problem(self, key: str, message: str) -> None:
        """Warn about ``key`` unless it is already open; always log."""
        self._log(message)
        if key not in self._open:
            self._open.add(key)
            self._warn(message)

    def resolved(self, key: str) -> None:
        if key in self._open:
            self._open.discard(key)
            self._log(f"resolved: {key}")

    @property
    def open_problems(self) -> frozenset[str]:
        return frozenset(self._open)
