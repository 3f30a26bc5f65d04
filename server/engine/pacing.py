"""How much prompt one engine step may evaluate: the step-time budget and the learned prompt cost.

One step yields one token per generating request, so a long prefill step stretches every
completion in flight; a short one wastes a CPU's matmul throughput (a 3k-token prompt ran at a
quarter of bare llama.cpp's rate in 0.3 s steps).  The budget therefore depends on who runs:

- some request is generating: ``decode_share`` of ``step_target``;
- a prompt evaluated alone (nothing waiting, no editor typing within ``interactive_window``):
  ``solo_step_target``; a newcomer waits at most one such step before it shares the batch, and
  an interactive newcomer stops the step instead (the engine's ``preempt``);
- otherwise ``step_target``.

Pure bookkeeping, owned by the engine thread: no locks, no llama.cpp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FIRST_CHUNK = 64  # tokens of the first prompt step, before any cost was measured
MIN_CHUNK = 8
MIN_LEARN_TOKENS = 16  # decode-only steps are dominated by fixed costs: they teach nothing


@dataclass
class Pacing:
    step_target: float = 0.3
    decode_share: float = 0.25
    solo_step_target: float = 2.0
    interactive_window: float = 10.0
    last_interactive: float = -math.inf  # monotonic time the last interactive request arrived
    sec_per_token: float | None = None  # prompt-evaluation cost, moving average

    def step_time(self, decoding: bool, alone: bool, now: float) -> float | None:
        """Seconds of prompt evaluation the next step may take (None: not measured yet).

        ``decoding``: some running request is generating; ``alone``: one running request and
        none waiting."""
        if self.sec_per_token is None:
            return None
        if decoding:
            return self.step_target * self.decode_share
        if alone and now - self.last_interactive > self.interactive_window:
            return max(self.step_target, self.solo_step_target)
        return self.step_target

    def chunk(self, target: float | None) -> int:
        """Prompt tokens that fit in ``target`` seconds at the learned cost."""
        if target is None or self.sec_per_token is None:
            return FIRST_CHUNK
        return max(MIN_CHUNK, int(target / self.sec_per_token))

    def long(self, target: float | None) -> bool:
        """A step over ``step_target`` (a prompt alone): worth stopping for a keystroke."""
        return target is not None and target > self.step_target

    def learn(self, n_tokens: int, seconds: float) -> None:
        if n_tokens < MIN_LEARN_TOKENS:
            return
        cost = seconds / n_tokens
        self.sec_per_token = cost if self.sec_per_token is None else 0.7 * self.sec_per_token + 0.3 * cost
