"""``Engine``: one loaded model, one thread, continuous batching over all active requests.

``Engine.step()`` = admit → ``schedule`` → one ``llama_decode`` → sample every sequence
that produced logits → ``update``.  Aborts (client gone, request superseded by the same
editor session) are drained at the top of every step, so abandoned work stops within one
step and its sequence is free for the next request, keeping its KV for prefix reuse.

asyncio code talks to the engine thread through ``submit``/``abort`` (thread-safe) and gets
events back through ``loop.call_soon_threadsafe``; nothing outside ``engine/`` calls anything
else in here.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from .embed import Embedder, EmbeddingError
from .llama import Context, ContextOptions, LoadOptions, Model
from .request import Done, Event, FinishReason, Request, RequestStatus, SamplingParams, Token
from .sampling import GrammarError, Sampler, TextStream, token_logprobs
from .scheduler import QueueFull, Scheduler, SchedulerOutput

log = logging.getLogger("llamita.engine")

_FINISH = {
    RequestStatus.FINISHED_STOPPED: FinishReason.STOP,
    RequestStatus.FINISHED_LENGTH: FinishReason.LENGTH,
    RequestStatus.FINISHED_ABORTED: FinishReason.ABORTED,
    RequestStatus.FINISHED_ERROR: FinishReason.ERROR,
}


@dataclass
class EngineStats:
    """Counters for /api/ps and /metrics."""

    steps: int = 0
    prompt_tokens_evaluated: int = 0
    prompt_tokens_cached: int = 0
    tokens_generated: int = 0
    aborted: int = 0


class Engine:
    def __init__(
        self,
        model_path: Path,
        load: LoadOptions,
        context: ContextOptions,
        max_queue: int = 512,
        step_target: float = 0.3,
        decode_share: float = 0.25,
    ) -> None:
        self.model = Model(model_path, load)
        try:
            self.ctx = Context(self.model, context)
        except Exception:
            self.model.close()
            raise
        self.options = context
        self.n_ctx_seq = context.n_ctx_seq
        # As many running requests as full-length sequences fit in the cells (OLLAMA_NUM_PARALLEL).
        parallel = max(1, context.n_ctx // max(context.n_ctx_seq, 1))
        self.scheduler = Scheduler(
            context.n_seq_max, context.n_batch, max_queue, parallel, can_copy=self.model.can_copy_prefix
        )
        self.stats = EngineStats()
        self.step_target = step_target
        self.decode_share = decode_share
        self._sec_per_token: float | None = None  # prompt-evaluation cost, moving average
        self._cv = threading.Condition()
        self._inbox: deque[tuple[str, object]] = deque()
        self._samplers: dict[int, Sampler] = {}
        self._streams: dict[int, TextStream] = {}
        self.embedder = Embedder(self.model, context, self.call, limit=context.n_ctx_seq)
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"engine:{model_path.name}", daemon=True)
        self._thread.start()

    # ---- thread-safe API --------------------------------------------------------------
    def submit(self, request: Request) -> None:
        with self._cv:
            queued = sum(1 for kind, _ in self._inbox if kind == "add") + len(self.scheduler.waiting)
            if queued >= self.scheduler.max_queue:
                raise QueueFull()
            self._inbox.append(("add", request))
            self._cv.notify()

    def abort(self, request_id: int) -> None:
        with self._cv:
            self._inbox.append(("abort", request_id))
            self._cv.notify()

    def call(self, fn: Callable[[], object]) -> Future[object]:
        """Run ``fn`` on the engine thread between steps (it owns the contexts)."""
        future: Future[object] = Future()
        with self._cv:
            self._inbox.append(("call", (fn, future)))
            self._cv.notify()
        return future

    @property
    def active(self) -> int:
        with self._cv:
            return len(self.scheduler.running) + len(self.scheduler.waiting) + len(self._inbox)

    def close(self) -> None:
        with self._cv:
            self._closing = True
            self._cv.notify()
        self._thread.join(timeout=60)
        self.embedder.close()
        self.ctx.close()
        self.model.close()

    # ---- asyncio API ---------------------------------------------------------------------
    async def generate(
        self, prompt: list[int], params: SamplingParams, session: str | None = None
    ) -> AsyncIterator[Event]:
        """Submit a request and yield its events; closing the iterator aborts the request."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Event] = asyncio.Queue()

        def emit(event: Event) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, event)
            except RuntimeError:  # the event loop is gone: nobody is listening any more
                self.abort(request.id)

        request = Request(prompt=prompt, params=params, emit=emit, session=session)
        self.submit(request)
        done = False
        try:
            while not done:
                event = await queue.get()
                done = isinstance(event, Done)
                yield event
        finally:
            if not done:
                self.abort(request.id)

    async def embed(self, inputs: list[list[int]]) -> list[list[float]]:
        """Pooled, un-normalised embeddings, computed on the engine thread between steps."""
        return await self.embedder.embed(inputs)

    # ---- engine thread -----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._inbox and not self.scheduler.has_work and not self._closing:
                    self._cv.wait()
                if self._closing:
                    break
                items = list(self._inbox)
                self._inbox.clear()
            for kind, item in items:
                self._handle(kind, item)
            try:
                self.step()
            except Exception as e:  # a broken step must not leave clients waiting forever
                log.exception("engine step failed")
                for request in [*self.scheduler.running]:
                    self._finish(request, RequestStatus.FINISHED_ERROR, str(e))
        for request in [*self.scheduler.running, *self.scheduler.waiting]:
            self._finish(request, RequestStatus.FINISHED_ABORTED)

    def _handle(self, kind: str, item: object) -> None:
        if kind == "add":
            assert isinstance(item, Request)
            if item.session is not None:
                for old in self.scheduler.of_session(item.session):
                    self._finish(old, RequestStatus.FINISHED_ABORTED)  # superseded by the same editor
            self.scheduler.waiting.append(item)
        elif kind == "abort":
            for request in [*self.scheduler.running, *self.scheduler.waiting]:
                if request.id == item:
                    self._finish(request, RequestStatus.FINISHED_ABORTED)
        elif kind == "call":
            fn, future = item  # type: ignore[misc]
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except Exception as e:
                    future.set_exception(e)

    def step(self) -> None:
        for request in self.scheduler.admit(self.ctx):
            self._start(request)
        output = self.scheduler.schedule(self._prefill_budget())
        if not output.chunks:
            return
        self._make_room(output.n_tokens)
        logits_at = self._fill_batch(output)
        started = time.monotonic()
        rc = self.ctx.decode()
        self._learn_cost(output.n_tokens, time.monotonic() - started)
        self.stats.steps += 1
        if rc != 0:
            self._decode_failed(output, rc)
            return
        self.scheduler.after_decode(output)
        now = time.monotonic()
        for request, index in logits_at:
            if not request.status.is_finished:
                self._sample(request, index, now)

    def _make_room(self, n_tokens: int) -> None:
        """Keep the unified KV within its cells: drop idle sequences' KV, least recent first.

        There are more sequences than parallel requests, so an editor's new request does not
        have to evict another editor's KV while its own previous request is still winding
        down; the cell budget (``num_ctx`` x parallel) is what bounds memory.
        """
        slots = self.scheduler.slots.slots
        used = sum(len(s.tokens) for s in slots)
        for slot in sorted((s for s in slots if not s.busy and s.tokens), key=lambda s: s.last_used):
            if used + n_tokens <= self.ctx.n_ctx:
                break
            self.ctx.seq_rm(slot.seq, 0, -1)
            used -= len(slot.tokens)
            slot.tokens.clear()
            slot.session = None

    def _prefill_budget(self) -> int | None:
        """Prompt tokens that fit in one step of ``step_target`` seconds (all of n_batch on a GPU).

        While some request is generating, steps are kept to ``decode_share`` of the target:
        each step yields only one token per generating request, so a long prefill step
        would stretch every completion in flight.
        """
        if self._sec_per_token is None:
            return 64  # measure on a modest first chunk
        decoding = any(r.status == RequestStatus.DECODING for r in self.scheduler.running)
        target = self.step_target * self.decode_share if decoding else self.step_target
        return max(8, int(target / self._sec_per_token))

    def _learn_cost(self, n_tokens: int, seconds: float) -> None:
        if n_tokens < 16:
            return  # decode-only steps are dominated by fixed costs
        cost = seconds / n_tokens
        self._sec_per_token = cost if self._sec_per_token is None else 0.7 * self._sec_per_token + 0.3 * cost

    def _start(self, request: Request) -> None:
        request.t_admitted = time.monotonic()
        self.stats.prompt_tokens_cached += request.n_cached
        try:
            sampler = Sampler(self.model.vocab, request.params, self.model.n_vocab)
        except GrammarError as e:
            self._finish(request, RequestStatus.FINISHED_ERROR, str(e))
            return
        sampler.accept_prompt(request.prompt[-max(request.params.repeat_last_n, 0) :])
        self._samplers[request.id] = sampler
        self._streams[request.id] = TextStream(request.params.stop)

    def _fill_batch(self, output: SchedulerOutput) -> list[tuple[Request, int]]:
        batch = self.ctx.batch
        batch.clear()
        logits_at = []
        for chunk in output.chunks:
            last = len(chunk.tokens) - 1
            for i, token in enumerate(chunk.tokens):
                index = batch.add(token, chunk.pos + i, chunk.seq, chunk.logits and i == last)
            if chunk.logits:
                logits_at.append((chunk.request, index))
            if chunk.request.status == RequestStatus.PREFILLING:
                self.stats.prompt_tokens_evaluated += len(chunk.tokens)
        return logits_at

    def _decode_failed(self, output: SchedulerOutput, rc: int) -> None:
        message = "the KV cache is full" if rc == 1 else f"llama_decode failed ({rc})"
        for chunk in output.chunks:
            slot = self.scheduler.slots.slot_of(chunk.request)
            if slot is not None:  # the KV of a failed batch is not trustworthy
                self.ctx.seq_rm(slot.seq, 0, -1)
                slot.tokens.clear()
            self._finish(chunk.request, RequestStatus.FINISHED_ERROR, message)

    def _sample(self, request: Request, index: int, now: float) -> None:
        token = self._samplers[request.id].sample(self.ctx.ptr, index)
        if not request.generated:
            request.t_first_token = now
        request.generated.append(token)
        self.stats.tokens_generated += 1
        if self.model.is_eog(token) and not request.params.ignore_eos:
            self._finish(request, RequestStatus.FINISHED_STOPPED)
            return
        stream = self._streams[request.id]
        if request.params.logprobs:
            request.logprobs.append(
                token_logprobs(
                    self.ctx.ptr,
                    index,
                    self.model.n_vocab,
                    token,
                    request.params.top_logprobs,
                    lambda t: self.model.piece(t, special=True),
                )
            )
        text = stream.push(self.model.piece(token))
        if text:
            request.emit(Token(text, token, _take(request.logprobs)))
        slot = self.scheduler.slots.slot_of(request)
        limit = request.params.num_predict
        if stream.stopped:
            self._finish(request, RequestStatus.FINISHED_STOPPED)
        elif (limit >= 0 and len(request.generated) >= limit) or (
            slot is not None and len(slot.tokens) + 1 >= self.n_ctx_seq
        ):
            self._finish(request, RequestStatus.FINISHED_LENGTH)
        else:
            request.pending = token
            request.status = RequestStatus.DECODING

    def _finish(self, request: Request, status: RequestStatus, error: str = "") -> None:
        if request.status.is_finished:
            return
        stream = self._streams.pop(request.id, None)
        if stream is not None and status != RequestStatus.FINISHED_ABORTED:
            rest = stream.flush()
            if rest:
                request.emit(Token(rest, -1, _take(request.logprobs)))
        sampler = self._samplers.pop(request.id, None)
        if sampler is not None:
            sampler.close()
        slot = self.scheduler.slots.slot_of(request)
        self.scheduler.finish(request, status)
        if status == RequestStatus.FINISHED_ABORTED:
            self.stats.aborted += 1
            if slot is not None and slot.tokens:
                self.scheduler.adopt(slot, self.ctx)
        now = time.monotonic()
        first = request.t_first_token or now
        admitted = request.t_admitted or now
        request.emit(
            Done(
                reason=_FINISH[status],
                prompt_tokens=len(request.prompt),
                prompt_eval_count=max(request.n_past - request.n_cached, 0),
                prompt_cache_tokens=request.n_cached,
                prompt_eval_duration=int((first - admitted) * 1e9),
                eval_count=len(request.generated),
                eval_duration=int((now - first) * 1e9) if request.t_first_token else 0,
                context=[*request.prompt, *(t for t in request.generated if not self.model.is_eog(t))],
                error=error,
            )
        )


def _take(items: list[dict[str, object]]) -> list[dict[str, object]]:
    """Hand over the pending logprob entries (they travel with the text they produced)."""
    taken = items[:]
    items.clear()
    return taken


__all__ = ["EmbeddingError", "Engine", "EngineStats", "QueueFull"]
