"""Token scheduling for one loaded model: what goes into the next ``llama_decode``.

Contract of ``schedule()``: every decoding request contributes exactly one token (its last
sampled one), so generation never stalls behind a prompt (should more requests decode than
``n_batch`` holds, they take turns); the rest of the batch (up to ``n_batch`` tokens, and at
most the step's prefill budget) is filled with pending prompt tokens (and tails that a
context shift must evaluate again), shortest remaining prompt first, so a one-keystroke FIM
update is not stuck behind a long review prompt: on a CPU a 512-token chunk is seconds of
work, so the engine sizes the budget to a target step time and long prompts are prefilled
over several steps.  A request asks for logits only on its last prompt token and on each
generated token.

Admission: waiting requests are bound to free sequences (see :mod:`cache`), the most urgent
class first, at most ``max_running`` at a time: the KV cache holds ``max_running`` full-length
sequences, and the spare sequences beyond that only keep idle editors' KV (evicted when room
is needed), so running requests can always grow to their context length.  Within a class,
places are shared fairly between owners (the API key's name; None is one anonymous owner):
the next place goes to the owner with the fewest running requests, then the one served least
recently, and to that owner's oldest request, so one key's burst of fifty waits behind
another key's single request for at most one free place.  With one owner this is arrival
order.  ``max_queue`` bounds the waiting list (Ollama's 503); ``max_queued_per_owner`` bounds
one owner's share of it (a 429, see :class:`OwnerQueueFull`).  Pure Python: no llama.cpp.
"""

from __future__ import annotations

import itertools
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from .cache import KVOps, Slot, SlotTable
from .request import Priority, Request, RequestStatus

MAX_OWNERS_REMEMBERED = 1024
QUEUE_FULL = "server busy, please try again.  maximum pending requests exceeded"


class QueueFull(Exception):
    """Raised by ``add_request`` when ``max_queue`` requests are already waiting (a 503)."""

    def __init__(self, message: str = QUEUE_FULL) -> None:
        super().__init__(message)


class OwnerQueueFull(QueueFull):
    """Raised when the request's owner already has its cap of requests waiting: the others'
    turn, so a 429 that tells the client when to retry (``headers``), not a server-busy 503."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"too many queued requests for this API key (limit {cap})")
        self.headers = {"Retry-After": "1"}


@dataclass
class Chunk:
    """Tokens of one request in this step, starting at sequence position ``pos``."""

    request: Request
    seq: int
    tokens: list[int]
    pos: int
    logits: bool
    decode: bool = False  # a decoding request's one sampled token (not prompt or replay)

    def cut(self, n: int) -> Chunk:
        """The first ``n`` tokens only (logits only if the chunk still ends where it did)."""
        return Chunk(self.request, self.seq, self.tokens[:n], self.pos, self.logits and n >= len(self.tokens))


@dataclass
class SchedulerOutput:
    chunks: list[Chunk] = field(default_factory=list)

    @property
    def n_tokens(self) -> int:
        return sum(len(c.tokens) for c in self.chunks)


class Scheduler:
    def __init__(
        self,
        n_slots: int,
        n_batch: int,
        max_queue: int = 512,
        max_running: int | None = None,
        can_copy: bool = True,
        max_queued_per_owner: int = 0,
    ) -> None:
        self.slots = SlotTable(n_slots, can_copy)
        self.n_batch = n_batch
        self.max_queue = max_queue
        self.max_queued_per_owner = max_queued_per_owner  # 0: no cap
        self.max_running = n_slots if max_running is None else max(1, min(max_running, n_slots))
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []
        self._turn = 0  # rotates decoders when more decode than fit in n_batch
        self._held_back = False  # the last step kept other prompts out for an interactive one
        self._admissions = itertools.count(1)
        self._served: dict[str | None, int] = {}  # owner -> the number of its last admission

    @property
    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    def add_request(self, request: Request) -> None:
        self.check_room(request.owner)
        self.waiting.append(request)

    def check_room(self, owner: str | None, arriving: Sequence[Request] = ()) -> None:
        """Raise unless one more request of ``owner`` may wait beside ``waiting`` and
        ``arriving`` (requests not yet handed to the scheduler)."""
        if len(self.waiting) + len(arriving) >= self.max_queue:
            raise QueueFull()
        cap = self.max_queued_per_owner
        if cap and sum(r.owner == owner for r in itertools.chain(self.waiting, arriving)) >= cap:
            raise OwnerQueueFull(cap)

    def admit(self, kv: KVOps) -> list[Request]:
        """Place waiting requests on free sequences, by priority then arrival; returns the new ones.

        An interactive request may take one running place beyond ``max_running`` (there are
        spare sequences, and its prompt is short): a keystroke must never wait for a review
        prompt to finish.
        """
        admitted = []
        while True:
            request = self._next_waiting()
            if request is None:
                break
            placement = self.slots.place(request, kv)
            if placement is None:
                break
            self.waiting.remove(request)
            self._served[request.owner] = next(self._admissions)
            if len(self._served) > MAX_OWNERS_REMEMBERED:  # forget owners with nothing here
                present = {r.owner for r in [*self.running, *self.waiting]}
                self._served = {o: n for o, n in self._served.items() if o in present}
            request.n_past = request.n_cached = placement.reused
            request.status = RequestStatus.PREFILLING
            self.running.append(request)
            admitted.append(request)
        return admitted

    def _next_waiting(self) -> Request | None:
        """The waiting request to admit next: the most urgent class first; within it, the owner
        with the fewest running requests, then the one served least recently; its oldest one."""
        if not self.waiting:
            return None
        urgent = min(r.priority for r in self.waiting)
        running = Counter(r.owner for r in self.running)
        request = min(
            (r for r in self.waiting if r.priority == urgent),
            key=lambda r: (running[r.owner], self._served.get(r.owner, 0), r.arrival),
        )
        room = self.max_running + (1 if request.priority == Priority.INTERACTIVE else 0)
        return request if len(self.running) < min(room, len(self.slots.slots)) else None

    def schedule(self, prefill_budget: int | None = None) -> SchedulerOutput:
        """``prefill_budget`` caps prompt tokens this step (the engine sizes it to a step time)."""
        out = SchedulerOutput()
        decoding = [r for r in self.running if r.pending is not None and not r.replay]
        if len(decoding) > self.n_batch:  # never more than n_batch tokens: take turns, fairly
            start = self._turn % len(decoding)
            decoding = (decoding[start:] + decoding[:start])[: self.n_batch]
            self._turn = start + self.n_batch
        for request in decoding:
            slot = self.slots.slot_of(request)
            assert slot is not None and request.pending is not None
            chunk = Chunk(request, slot.seq, [request.pending], self.slots.held(slot), True, decode=True)
            out.chunks.append(chunk)
        # Prompt tokens, and the tail a context shift has to evaluate again: the most urgent class
        # first, then the shortest.  The first interactive prompt goes in whole whatever the
        # step-time budget (its first token is what the typist waits for), and a step that
        # prefills an interactive prompt carries no other class's prompt, except every other
        # such step, so that a stream of keystrokes cannot starve the other prompts.
        prefilling = sorted(
            (r for r in self.running if (r.status == RequestStatus.PREFILLING or r.replay) and _left(r) > 0),
            key=lambda r: (r.priority, _left(r), r.arrival),
        )
        urgent = bool(prefilling) and prefilling[0].priority == Priority.INTERACTIVE
        exclusive = urgent and not self._held_back
        budget = self.n_batch - len(decoding)
        if prefill_budget is not None:
            budget = min(budget, max(prefill_budget, 1) + (_left(prefilling[0]) if urgent else 0))
        held_back = False
        for request in prefilling:
            if exclusive and request.priority != Priority.INTERACTIVE:
                held_back = True
                break
            if budget <= 0:
                break
            slot = self.slots.slot_of(request)
            assert slot is not None
            todo, done = _todo(request), _done(request)
            take = min(len(todo) - done, budget)
            tokens = todo[done : done + take]
            pos = self.slots.held(slot)
            out.chunks.append(Chunk(request, slot.seq, tokens, pos, done + take == len(todo)))
            budget -= take
        self._held_back = held_back
        return out

    def after_decode(self, decoded: SchedulerOutput | list[Chunk]) -> None:
        """Record what the KV now holds for each decoded chunk (before sampling)."""
        for chunk in decoded.chunks if isinstance(decoded, SchedulerOutput) else decoded:
            slot = self.slots.slot_of(chunk.request)
            if slot is None:
                continue
            self.slots.decoded(slot, chunk.tokens)
            request = chunk.request
            if request.status == RequestStatus.PREFILLING:
                request.n_past += len(chunk.tokens)
            elif chunk.decode:
                request.pending = None
            else:
                del request.replay[: len(chunk.tokens)]

    def finish(self, request: Request, status: RequestStatus) -> None:
        """Take a request out (running or waiting); its sequence keeps its KV for reuse."""
        request.status = status
        if request in self.running:
            self.running.remove(request)
            slot = self.slots.slot_of(request)
            if slot is not None:
                self.slots.release(slot)
        elif request in self.waiting:
            self.waiting.remove(request)

    def adopt(self, donor: Slot, kv: KVOps) -> None:
        """Let prefilling requests take over KV an aborted request left behind.

        An editor's superseded request and its successor often run side by side for a step;
        whatever the old one evaluated beyond the new one's progress is copied into the new
        one's sequence (``seq_cp`` shares cells) instead of being evaluated twice.  Not for
        recurrent memory: its ``seq_cp`` shares the donor's whole state, whatever the range.
        """
        if not self.slots.can_copy:
            return
        for request in self.running:
            if request.status != RequestStatus.PREFILLING:
                continue
            slot = self.slots.slot_of(request)
            if slot is None or slot is donor:
                continue
            shared = min(self.slots.shared(donor, request.prompt), len(request.prompt) - 1)
            if shared <= request.n_past:
                continue
            self.slots.copy(donor, slot, request.n_past, shared, kv)
            request.n_cached += shared - request.n_past
            request.n_past = shared

    def of_session(self, session: str) -> list[Request]:
        return [r for r in [*self.running, *self.waiting] if r.session == session]


def _todo(request: Request) -> list[int]:
    """What a request still has to get into the KV before it samples: its prompt, or a replay."""
    return request.prompt if request.status == RequestStatus.PREFILLING else request.replay


def _left(request: Request) -> int:
    """Tokens a request still has to get into the KV before it samples."""
    return len(_todo(request)) - _done(request)


def _done(request: Request) -> int:
    return request.n_past if request.status == RequestStatus.PREFILLING else 0
