"""What the engine works on (``Request``) and what it reports back (``Token``, ``Done``)."""

from __future__ import annotations

import enum
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("llamita.engine")

_ids = itertools.count(1)


class RequestStatus(enum.IntEnum):
    """Ordered: everything from FINISHED_STOPPED on is final (vLLM-style ``is_finished``)."""

    WAITING = 0
    PREFILLING = 1
    DECODING = 2
    FINISHED_STOPPED = 3
    FINISHED_LENGTH = 4
    FINISHED_ABORTED = 5
    FINISHED_ERROR = 6

    @property
    def is_finished(self) -> bool:
        return self >= RequestStatus.FINISHED_STOPPED

    @property
    def reason(self) -> FinishReason:
        """What ``Done`` reports for this final status."""
        return _REASONS[self]


class FinishReason(enum.StrEnum):
    STOP = "stop"
    LENGTH = "length"
    ABORTED = "aborted"
    ERROR = "error"


_REASONS = {
    RequestStatus.FINISHED_STOPPED: FinishReason.STOP,
    RequestStatus.FINISHED_LENGTH: FinishReason.LENGTH,
    RequestStatus.FINISHED_ABORTED: FinishReason.ABORTED,
    RequestStatus.FINISHED_ERROR: FinishReason.ERROR,
}


class Priority(enum.IntEnum):
    """Who waits for a request: admission and prefill go in this order (lower first).

    ``INTERACTIVE`` is a keystroke's completion (our language server marks it; short raw and
    FIM prompts are taken to be one): its user waits with the cursor, so it is admitted ahead
    of chat and agent work, has a running place kept for it, and its prefill is not shared
    with longer prompts.  ``BATCH`` is work nobody watches token by token (review, PR text).
    """

    INTERACTIVE = 0
    NORMAL = 1
    BATCH = 2


@dataclass
class SamplingParams:
    """Per-request sampling, with Ollama's defaults; ``temperature <= 0`` means greedy."""

    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.9
    min_p: float = 0.0
    typical_p: float = 1.0
    repeat_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repeat_last_n: int = 64
    seed: int = -1
    mirostat: int = 0
    mirostat_tau: float = 5.0
    mirostat_eta: float = 0.1
    num_predict: int = -1
    stop: list[str] = field(default_factory=list)
    grammar: str | None = None
    num_keep: int = 4  # tokens kept at the start when the context shifts (-1: the whole prompt)
    shift: bool = True  # at num_ctx, drop half the window and go on (Ollama); False: stop (length)
    ignore_eos: bool = False  # benchmarks only: generate exactly num_predict tokens
    logprobs: bool = False  # report each generated token's log probability
    top_logprobs: int = 0  # ... and that many most likely alternatives (0-20)


@dataclass
class Token:
    """A piece of generated text (possibly empty while a stop string might still match).

    ``logprobs`` holds Ollama's ``{token, logprob, bytes, top_logprobs?}`` entries of the tokens
    whose text this piece completes, when the request asked for them.
    """

    text: str
    token_id: int
    logprobs: list[dict[str, object]] = field(default_factory=list)


@dataclass
class Done:
    """The last event of a request, with Ollama's counters (durations in nanoseconds)."""

    reason: FinishReason
    prompt_tokens: int  # all prompt tokens
    prompt_eval_count: int  # tokens actually evaluated (the rest came from the KV cache)
    prompt_cache_tokens: int
    prompt_eval_duration: int
    eval_count: int
    eval_duration: int
    context: list[int]  # prompt + generated tokens, for /api/generate's ``context``
    error: str = ""
    stop_sequence: str = ""  # the request's stop string that ended the text, if one did


Event = Token | Done

SUPERSEDED = "request superseded by a newer request from the same session"
CANCELED = "request canceled"


@dataclass(eq=False)
class Request:
    """One generation.  Mutated only by the engine thread once submitted."""

    prompt: list[int]
    params: SamplingParams
    emit: Callable[[Event], None]
    session: str | None = None
    priority: Priority = Priority.NORMAL
    owner: str | None = None  # the API key's name: admission shares the engine between owners
    id: int = field(default_factory=lambda: next(_ids))
    status: RequestStatus = RequestStatus.WAITING
    arrival: float = field(default_factory=time.monotonic)

    # Filled in by the engine.
    n_past: int = 0  # prompt tokens already in the KV cache for this request's sequence
    n_cached: int = 0  # of those, how many were reused rather than evaluated
    generated: list[int] = field(default_factory=list)
    pending: int | None = None  # sampled but not yet decoded
    replay: list[int] = field(default_factory=list)  # to re-evaluate after a context shift, then decode
    stop_tokens: frozenset[int] = frozenset()  # control tokens named by a stop string
    logprobs: list[dict[str, object]] = field(default_factory=list)  # not yet sent with text
    t_admitted: float = 0.0
    t_first_token: float = 0.0

    @property
    def remaining_prompt(self) -> int:
        return len(self.prompt) - self.n_past

    def deliver(self, event: Event) -> None:
        """Hand an event to the client; a client that fails to take it harms no one else."""
        try:
            self.emit(event)
        except Exception:
            log.exception("could not deliver an event of request %d", self.id)

    def take_logprobs(self) -> list[dict[str, object]]:
        """Hand over the pending logprob entries (they travel with the text they produced)."""
        taken = self.logprobs[:]
        self.logprobs.clear()
        return taken

    def done(
        self, reason: FinishReason, context: list[int], error: str = "", stop_sequence: str = ""
    ) -> Done:
        """The last event, with Ollama's counters (durations from admission and first token)."""
        now = time.monotonic()
        first = self.t_first_token or now
        admitted = self.t_admitted or now
        return Done(
            reason=reason,
            prompt_tokens=len(self.prompt),
            prompt_eval_count=max(self.n_past - self.n_cached, 0),
            prompt_cache_tokens=self.n_cached,
            prompt_eval_duration=int((first - admitted) * 1e9),
            eval_count=len(self.generated),
            eval_duration=int((now - first) * 1e9) if self.t_first_token else 0,
            context=context,
            error=error,
            stop_sequence=stop_sequence,
        )
