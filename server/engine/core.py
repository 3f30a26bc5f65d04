"""``Engine``: one loaded model, one thread, continuous batching over all active requests.

``Engine.step()`` = admit → ``schedule`` → one ``llama_decode`` → sample every sequence
that produced logits → ``update``.  Aborts (client gone, request superseded by the same
editor session) are drained at the top of every step, so abandoned work stops within one
step and its sequence is free for the next request, keeping its KV for prefix reuse.

One request can never harm another: whatever a request brings (sampling options, tokens,
stop strings) fails only that request, and a failed ``llama_decode`` is retried on parts of
the batch until the request behind it is found (:mod:`decoding`); the others go on with their
KV intact.  Anything else that breaks the engine thread fails every request with a clear
error and marks the engine unhealthy (``healthy``/``failure``), and the runner reloads it.

asyncio code talks to the engine thread through ``submit``/``abort`` (thread-safe) and gets
events back through ``loop.call_soon_threadsafe``; nothing outside ``engine/`` calls anything
else in here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from .cache import Slot
from .decoding import Decoder
from .delivery import Outbox
from .embed import Embedder
from .inbox import Abort, Add, Call, Item
from .llama import Context, ContextOptions, LoadOptions, Model
from .openmp import name_thread, release_team
from .pacing import Pacing
from .request import (
    CANCELED,
    SUPERSEDED,
    Done,
    Event,
    FinishReason,
    Priority,
    Request,
    RequestStatus,
    SamplingParams,
    Token,
)
from .sampling import Sampler, TextStream, text_tokens, token_logprobs
from .scheduler import Chunk, Scheduler

log = logging.getLogger("llamita.engine")


class EngineFailed(RuntimeError):
    """Raised by ``submit``/``generate`` once the engine thread has died (the runner reloads it)."""


UNLOADED = "the model was unloaded while the request was running"


@dataclass
class EngineStats:
    """For /api/ps and /metrics: monotonic counters (the engine thread appends to its own copy)
    and, in the snapshot :meth:`Engine.stats` returns, the engine's present load."""

    steps: int = 0
    prompt_tokens_evaluated: int = 0
    prompt_tokens_cached: int = 0
    tokens_generated: int = 0
    aborted: int = 0
    running: int = 0  # requests holding a sequence
    queued: int = 0  # requests waiting for one
    kv_tokens: int = 0  # tokens held in the sequences' KV cache
    n_ctx: int = 0  # KV cache cells, all sequences
    embed_n_ctx: int = 0  # cells of the live embedding context (0: none), for memory accounting


_NUMBERS = itertools.count(1)  # engine numbers, for thread names


class Engine:
    def __init__(
        self,
        model_path: Path,
        load: LoadOptions,
        context: ContextOptions,
        max_queue: int = 512,
        step_target: float = 0.3,
        decode_share: float = 0.25,
        solo_step_target: float = 2.0,
        interactive_window: float = 10.0,
        max_queued_per_owner: int = 0,
        idle_release: float = 0.25,
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
        copy, per_owner = self.model.can_copy_prefix, max_queued_per_owner
        self.scheduler = Scheduler(context.n_seq_max, self.ctx.n_batch, max_queue, parallel, copy, per_owner)
        self.failure: str | None = None  # why the engine thread died (then it is not ``healthy``)
        self._decoder = Decoder(self.ctx, self.scheduler.slots, self._decoded, self._fail)
        self.counters = EngineStats()
        self.pacing = Pacing(step_target, decode_share, solo_step_target, interactive_window)
        self._urgent = False  # an interactive request arrived during this step
        self._cv = threading.Condition()
        self._inbox: deque[Item] = deque()
        self._samplers: dict[int, Sampler] = {}
        self._streams: dict[int, TextStream] = {}
        self._outbox = Outbox()  # a step's events leave together (see :mod:`delivery`)
        self.embedder = Embedder(self.model, context, self.call, limit=context.n_ctx_seq)
        self._closing = False
        # Seconds idle before the engine thread hands its OpenMP team back (see :mod:`openmp`).
        self.idle_release = idle_release
        self.thread_name = f"llamita-e{next(_NUMBERS)}"  # its OS name, which its OpenMP team inherits
        self._thread = threading.Thread(target=self._run, name=f"engine:{model_path.name}", daemon=True)
        self._thread.start()

    # ---- thread-safe API --------------------------------------------------------------
    def submit(self, request: Request) -> None:
        with self._cv:
            self._check_alive()
            self.scheduler.check_room(request.owner, [i.request for i in self._inbox if isinstance(i, Add)])
            self._inbox.append(Add(request))
            if request.priority == Priority.INTERACTIVE:
                self._urgent = True
            self._cv.notify()

    def abort(self, request_id: int) -> None:
        with self._cv:
            self._inbox.append(Abort(request_id))
            self._cv.notify()

    def call(self, fn: Callable[[], object]) -> Future[object]:
        """Run ``fn`` on the engine thread between steps (it owns the contexts)."""
        future: Future[object] = Future()
        with self._cv:
            self._check_alive()
            self._inbox.append(Call(fn, future))
            self._cv.notify()
        return future

    @property
    def healthy(self) -> bool:
        """False once the engine thread died (``failure`` says why): reload the model."""
        return self.failure is None and self._thread.is_alive()

    def _check_alive(self) -> None:
        """Under ``_cv``: refuse work that nobody would ever answer."""
        if self.failure is not None:
            raise EngineFailed(self.failure)
        if self._closing:
            raise EngineFailed("the model was unloaded")

    def validate(self, prompt: list[int]) -> None:
        """Raise ``ValueError`` for a prompt this model cannot take (the API checks first)."""
        if not prompt:
            raise ValueError("the prompt is empty")
        n_vocab = self.model.n_vocab
        if not all(isinstance(t, int) and 0 <= t < n_vocab for t in prompt):
            bad = next(t for t in prompt if not (isinstance(t, int) and 0 <= t < n_vocab))
            raise ValueError(f"invalid token id {bad!r}: the vocabulary has ids 0 to {n_vocab - 1}")
        if len(prompt) >= self.n_ctx_seq:
            raise ValueError(f"the prompt ({len(prompt)} tokens) does not fit the context ({self.n_ctx_seq})")

    # ---- the façade the runtime uses (nothing outside ``engine/`` reaches further in) -------
    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = True) -> list[int]:
        """Tokens of ``text``: a BOS first when the model wants one and ``add_special``;
        ``parse_special`` reads control-token texts (``<|im_start|>``, FIM markers) as tokens."""
        return self.model.tokenize(text, add_bos=None if add_special else False, special=parse_special)

    @property
    def bos(self) -> int:
        return self.model.bos

    @property
    def add_bos(self) -> bool:
        """Whether a prompt starts with BOS (its tokenization adds one)."""
        return self.model.add_bos

    @property
    def n_vocab(self) -> int:
        return self.model.n_vocab

    @property
    def n_ctx(self) -> int:
        """Tokens one sequence may hold (the request's context)."""
        return self.n_ctx_seq

    def stats(self) -> EngineStats:
        """The counters and present load, read without stopping the engine thread."""
        with self._cv:
            running = len(self.scheduler.running)
            queued = len(self.scheduler.waiting) + len(self._inbox)
        return dataclasses.replace(
            self.counters,
            running=running,
            queued=queued,
            kv_tokens=self.scheduler.slots.kv_tokens(),
            n_ctx=int(self.ctx.n_ctx),
            embed_n_ctx=self.embedder.n_ctx,
        )

    @property
    def closed(self) -> bool:
        """Whether ``close`` freed the llama.cpp context (it does not while the thread is still busy)."""
        return self.ctx.ptr is None

    @property
    def active(self) -> int:
        with self._cv:
            return len(self.scheduler.running) + len(self.scheduler.waiting) + len(self._inbox)

    def close(self) -> None:
        with self._cv:
            self._closing = True
            self._cv.notify()
        self._thread.join(timeout=60)
        if self._thread.is_alive():  # still inside llama.cpp: freeing now would be a use-after-free
            log.error("engine thread still busy after 60 s; leaving its llama.cpp context allocated")
            return
        self.embedder.close()
        self.ctx.close()
        self.model.close()

    # ---- asyncio API ---------------------------------------------------------------------
    def generate(
        self,
        prompt: list[int],
        params: SamplingParams,
        session: str | None = None,
        priority: Priority = Priority.NORMAL,
        owner: str | None = None,
    ) -> AsyncGenerator[Event, None]:
        """The events of a new request; closing the iterator aborts it.  ``owner`` (the API key's
        name) is what admission shares the engine fairly between.

        Raises here, before anything is submitted: ``ValueError`` for a prompt the model cannot
        take (empty, token ids outside the vocabulary), ``EngineFailed`` when the engine died.
        """
        self.validate(prompt)
        with self._cv:
            self._check_alive()
        return self._events(list(prompt), params, session, priority, owner)

    async def _events(
        self,
        prompt: list[int],
        params: SamplingParams,
        session: str | None,
        priority: Priority,
        owner: str | None = None,
    ) -> AsyncGenerator[Event, None]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Event] = asyncio.Queue()

        def emit(event: Event) -> None:
            self._outbox.post(loop, queue.put_nowait, event, lambda: self.abort(request.id))

        request = Request(
            prompt=prompt, params=params, emit=emit, session=session, priority=priority, owner=owner
        )
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
        name_thread(self.thread_name)
        team = False  # whether a step may have started an OpenMP team on this thread
        try:
            while True:
                with self._cv:
                    while not self._inbox and not self.scheduler.has_work and not self._closing:
                        if not team:
                            self._cv.wait()
                        elif not self._cv.wait(self.idle_release):
                            release_team()  # idle for a while: another model may want the CPUs
                            team = False
                    if self._closing:
                        break
                    items = list(self._inbox)
                    self._inbox.clear()
                    self._urgent = False  # what arrives from now on may stop the next step
                for item in items:
                    self._handle(item)
                self._outbox.flush()
                self.step()
                self._outbox.flush()
                team = True
        except BaseException as e:  # outside any one request: nothing in here can be trusted
            log.exception("engine thread failed")
            self._fail_all(f"the model runner failed ({type(e).__name__}: {e}); it is reloaded")
            return
        self._fail_all(UNLOADED, dead=False)

    def _fail_all(self, message: str, dead: bool = True) -> None:
        """Answer every request and call the engine still holds, so no client waits forever."""
        with self._cv:
            if dead:
                self.failure = message
            items = list(self._inbox)
            self._inbox.clear()
        added = [item.request for item in items if isinstance(item, Add)]
        for request in [*self.scheduler.running, *self.scheduler.waiting, *added]:
            self._finish_surely(request, RequestStatus.FINISHED_ERROR, message)
        for item in items:
            if isinstance(item, Call) and item.future.set_running_or_notify_cancel():
                item.future.set_exception(EngineFailed(message))
        self._outbox.flush()

    def _finish_surely(self, request: Request, status: RequestStatus, error: str) -> None:
        """``_finish``, and should the bookkeeping itself be what broke, at least the Done."""
        try:
            self._finish(request, status, error)
        except Exception:
            log.exception("could not finish request %d", request.id)
            if not request.status.is_finished:
                request.status = RequestStatus.FINISHED_ERROR
                request.deliver(Done(FinishReason.ERROR, len(request.prompt), 0, 0, 0, 0, 0, [], error))

    def _handle(self, item: Item) -> None:
        """One inbox item; a request whose handling fails is failed alone, the thread goes on."""
        match item:
            case Add(request):
                try:
                    self.validate(request.prompt)  # defence in depth: ``submit`` takes any Request
                    if request.priority == Priority.INTERACTIVE:
                        self.pacing.last_interactive = time.monotonic()
                    if request.session is not None:
                        for old in self.scheduler.of_session(request.session):
                            self._finish_surely(old, RequestStatus.FINISHED_ABORTED, SUPERSEDED)
                    self.scheduler.waiting.append(request)
                except Exception as e:
                    log.warning("request %d refused: %s", request.id, e)
                    self._finish_surely(request, RequestStatus.FINISHED_ERROR, str(e))
            case Abort(request_id):  # ``_finish_surely`` does not raise
                for request in [*self.scheduler.running, *self.scheduler.waiting]:
                    if request.id == request_id:
                        self._finish_surely(request, RequestStatus.FINISHED_ABORTED, CANCELED)
            case Call(fn, future):
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn())
                    except Exception as e:
                        future.set_exception(e)

    def step(self) -> None:
        for request in self.scheduler.admit(self.ctx):
            self._start(request)
        target = self._step_time()  # None until a first step measured the cost: a modest chunk
        output = self.scheduler.schedule(self.pacing.chunk(target))
        if not output.chunks:
            return
        self._make_room(output.n_tokens)
        self.counters.steps += 1
        # A long step (a prompt alone) stops for a keystroke instead of making it wait.
        preempt = self._urgent_waiting if self.pacing.long(target) else None
        seconds = self._decoder.decode(output.chunks, preempt)
        if seconds is not None:
            self.pacing.learn(output.n_tokens, seconds)

    def _urgent_waiting(self) -> bool:
        """Polled by llama.cpp during a long step: has an interactive request arrived since?"""
        return self._urgent

    def _make_room(self, n_tokens: int) -> None:
        """Keep the unified KV within its cells: drop idle sequences' KV, least recent first.

        There are more sequences than parallel requests, so an editor's new request does not
        have to evict another editor's KV while its own previous request is still winding
        down; the cell budget (``num_ctx`` x parallel) is what bounds memory.  Cells shared
        by prefix copies count once.
        """
        self.scheduler.slots.make_room(self.ctx, n_tokens, self.ctx.n_ctx)

    def _step_time(self) -> float | None:
        """Seconds of prompt evaluation this step may take (see :mod:`pacing`)."""
        running, scheduler = self.scheduler.running, self.scheduler
        decoding = any(r.status == RequestStatus.DECODING for r in running)
        alone = len(running) == 1 and not scheduler.waiting
        return self.pacing.step_time(decoding, alone, time.monotonic())

    def _start(self, request: Request) -> None:
        request.t_admitted = time.monotonic()
        self.counters.prompt_tokens_cached += request.n_cached
        sampler = None
        try:
            sampler = Sampler(self.model.vocab, request.params, self.model.n_vocab, self.n_ctx_seq)
            sampler.accept_prompt(request.prompt)
            stream = TextStream(request.params.stop)
            request.stop_tokens = self.model.control_tokens(request.params.stop)
        except Exception as e:  # this request's options: fail it alone
            if sampler is not None:
                sampler.close()
            self._finish(request, RequestStatus.FINISHED_ERROR, str(e))
            return
        self._samplers[request.id] = sampler
        self._streams[request.id] = stream

    def _decoded(self, chunks: list[Chunk], logits_at: list[tuple[Request, int]]) -> None:
        """``chunks`` are in the KV now: record them, then sample those that asked for logits."""
        self.counters.prompt_tokens_evaluated += sum(
            len(c.tokens) for c in chunks if c.request.status == RequestStatus.PREFILLING
        )
        self.scheduler.after_decode(chunks)
        now = time.monotonic()
        for request, index in logits_at:
            if not request.status.is_finished:
                self._sample(request, index, now)

    def _fail(self, request: Request, error: str) -> None:
        self._finish(request, RequestStatus.FINISHED_ERROR, error)

    # ---- sampling, stop handling, finishing --------------------------------------------------
    def _sample(self, request: Request, index: int, now: float) -> None:
        try:
            self._sample_one(request, index, now)
        except Exception as e:  # this request's sampler, stop strings or client: fail it alone
            log.exception("sampling failed for request %d", request.id)
            self._finish(request, RequestStatus.FINISHED_ERROR, f"sampling failed: {e}")

    def _sample_one(self, request: Request, index: int, now: float) -> None:
        token = self._samplers[request.id].sample(self.ctx.ptr, index)
        if not request.generated:
            request.t_first_token = now
        request.generated.append(token)
        self.counters.tokens_generated += 1
        if (self.model.is_eog(token) and not request.params.ignore_eos) or token in request.stop_tokens:
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
        # Control tokens are not text (special=False), as in llama-server, which current Ollama
        # runs; a stop string that names one (a Modelfile's "<|im_start|>") stops at that token
        # above, as Ollama's own Go runner did, instead of never matching.
        text = stream.push(self.model.piece(token))
        if text:
            request.deliver(Token(text, token, request.take_logprobs()))
        slot = self.scheduler.slots.slot_of(request)
        # num_predict -1: no limit, but Ollama's runner caps it at 10 x num_ctx.
        limit = request.params.num_predict if request.params.num_predict >= 0 else 10 * self.n_ctx_seq
        if stream.stopped:
            self._finish(request, RequestStatus.FINISHED_STOPPED)
        elif len(request.generated) >= limit:
            self._finish(request, RequestStatus.FINISHED_LENGTH)
        else:
            request.pending = token
            request.status = RequestStatus.DECODING
            if slot is not None and self.scheduler.slots.held(slot) + 1 > self.n_ctx_seq:
                self._shift(request, slot)

    def _shift(self, request: Request, slot: Slot) -> None:
        """The sequence is full: shift the context as Ollama does, or stop (``shift: false``).

        Like llama-server under Ollama: keep ``num_keep`` tokens (plus BOS; -1 = the prompt),
        drop half of the rest, and go on.
        """
        n = self.scheduler.slots.held(slot)
        keep = len(request.prompt) if request.params.num_keep < 0 else request.params.num_keep
        keep = max(0, min(keep + int(self.model.add_bos), self.n_ctx_seq - 4, n - 1))
        discard = (n - keep) // 2
        if not request.params.shift or discard <= 0:
            self._finish(request, RequestStatus.FINISHED_LENGTH)
            return
        replay = self.scheduler.slots.shift(slot, keep, discard, self.ctx, self.ctx.can_shift)
        if replay:  # evaluated again as a prompt-like chunk, then the pending token
            assert request.pending is not None
            request.replay = [*replay, request.pending]
            request.pending = None

    def _finish(self, request: Request, status: RequestStatus, error: str = "") -> None:
        if request.status.is_finished:
            return
        stream = self._streams.pop(request.id, None)
        sampler = self._samplers.pop(request.id, None)
        if sampler is not None:
            sampler.close()
        slot = self.scheduler.slots.slot_of(request)
        if slot is not None:
            self.scheduler.slots.trim_inexact(slot, self.ctx)
        self.scheduler.finish(request, status)
        if status == RequestStatus.FINISHED_ABORTED:
            self.counters.aborted += 1
            if slot is not None and self.scheduler.slots.held(slot):
                self.scheduler.adopt(slot, self.ctx)
        context = [*request.prompt, *(t for t in request.generated if not self.model.is_eog(t))]
        try:
            if stream is not None and status != RequestStatus.FINISHED_ABORTED:
                rest = stream.flush()
                if rest:
                    request.deliver(Token(rest, -1, request.take_logprobs()))
                if stream.stopped:  # Ollama: tokenize(prompt + the text returned)
                    generated = [t for t in request.generated if not self.model.is_eog(t)]
                    kept = text_tokens(generated, stream.text, self.model.piece, self.model.tokenize)
                    context = [*request.prompt, *kept]
        except Exception:  # the request's own stop strings: it still gets its Done
            log.exception("finishing the text of request %d failed", request.id)
        matched = stream.matched if stream is not None else ""
        request.deliver(request.done(status.reason, context, error, matched))
