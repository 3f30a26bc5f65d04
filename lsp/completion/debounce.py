"""How long to wait after a keystroke before asking the model.

Clients differ (VS Code debounces itself, LSP4IJ waits 300 ms, Neovim 0.12 and copilot.vim hardly at
all), so the server debounces too. A fixed delay is either sluggish for slow typists' pauses or wasteful
for fast typists; the adaptive delay follows tabby-agent's idea: about ``rate`` x the user's typical
interval between keystrokes (so it fires when they pause), minus what the model usually takes anyway,
clamped to 0-1 s. At the end of a line the user has more likely paused, so the rate is lower there.
An explicit request (trigger kind *Invoked*) is never delayed.
"""

from __future__ import annotations

from collections import deque

MAX_DELAY = 1.0
TYPING_GAP = 2.0  # a longer gap between requests is a pause, not a typing interval


class Debouncer:
    """Per-document timing state; ``now`` values are seconds from a monotonic clock."""

    def __init__(self, base_ms: int = 150, adaptive: bool = True) -> None:
        self.base = base_ms / 1000
        self.adaptive = adaptive
        self._intervals: deque[float] = deque(maxlen=20)
        self._latencies: deque[float] = deque(maxlen=10)
        self._last_request: float | None = None

    def configure(self, base_ms: int, adaptive: bool) -> None:
        self.base = base_ms / 1000
        self.adaptive = adaptive

    def record_request(self, now: float) -> None:
        if self._last_request is not None and 0 < now - self._last_request < TYPING_GAP:
            self._intervals.append(now - self._last_request)
        self._last_request = now

    def record_latency(self, seconds: float) -> None:
        self._latencies.append(seconds)

    def delay(self, *, invoked: bool = False, line_end: bool = False) -> float:
        """Seconds to wait before the model request."""
        if invoked or self.base <= 0:
            return 0.0
        if not self.adaptive or not self._intervals:
            return self.base
        interval = min(max(sum(self._intervals) / len(self._intervals), 0.05), 0.4)
        latency = sum(self._latencies) / len(self._latencies) if self._latencies else 0.0
        rate = 1.5 if line_end else 2.5
        return min(max(rate * interval - 0.5 * latency, self.base / 3), MAX_DELAY)
