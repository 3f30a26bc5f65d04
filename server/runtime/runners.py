"""Which models are loaded: Ollama's ``sched.go`` for llamita (one ``Engine`` per model).

A request ``acquire``s a runner (loading it, or reusing a loaded one whose load options are
compatible) and ``release``s it when done.  When no request holds a runner, it stays loaded
for its keep-alive duration and is then unloaded; ``keep_alive`` 0 unloads at once, a
negative value keeps it forever.

Locking: a loaded compatible runner is claimed without any lock.  Each model has its own load
lock (two requests for an unloaded model load it once; a model's load never blocks another
model's), and one short room lock decides evictions and GPU layers for one load at a time,
counting the loads still in flight.  When ``OLLAMA_MAX_LOADED_MODELS`` is reached, or RAM is
short, the idle runner that expires soonest is evicted first; on a GPU, when the model would
not fit in free VRAM, idle runners holding VRAM are evicted least recently used first (Ollama).

Pinned models: a runner is pinned while its keep-alive is forever (``keep_alive`` negative, as
in Ollama) or when its model is named in ``LLAMITA_PIN`` (then whatever a request's
``keep_alive`` says, 0 included: it never expires).  Other loads never evict a pinned runner:
over the count limit with every loaded model pinned, or short of RAM with only pinned models
idle, the load is refused (:class:`PinnedMemory`, a 503) instead.  On a GPU a pinned model's
VRAM is not taken either: the new model gets the layers that fit (the rest run on the CPU).
The ``LLAMITA_PIN`` models are loaded in the background at start-up (:mod:`pins`); a request
for one meanwhile waits for that load.

Compatibility (Ollama reloads on any runner-option difference, a top user complaint): a
loaded model is reused when its context is at least the requested ``num_ctx`` and the batch
size, mmap and adapters match.  An automatic ``num_gpu`` (absent or negative) matches any
loaded layer count, which is decided from free VRAM only when loading (never per request:
free VRAM drops by the loaded model's own size, and a per-request count reloaded every other
request); an explicit one must equal the loaded count.

Health: an engine whose thread died (``engine.healthy`` False) has already failed its
requests; the next ``acquire`` takes it out of service and loads the model again, and the
old engine is closed once its last holder releases it.  ``/api/ps`` and ``/metrics`` show it.

Resource options are bounded in :mod:`loadplan`.
Recurrent and hybrid models run one request at a time, as in Ollama: their state cannot be
shared between sequences, so parallel sequences would only multiply prefill work.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from llamita.server import config
from llamita.server.engine import (
    EMBED_MIN_TOKENS,
    ContextOptions,
    Engine,
    LoadOptions,
)
from llamita.server.model.ggufinfo import GGUFInfo
from llamita.server.model.model import StoredModel
from llamita.server.store.blobs import Store
from llamita.server.store.names import Name, parse_name

from .knobs import context_options, same_knobs
from .loadplan import AUTO, LoadPlan, load_options
from .memory import GPU_RESERVE, available_memory, estimate, free_vram, layers_that_fit
from .pins import PinnedMemory, preload

log = logging.getLogger("llamita.runners")

FOREVER = math.inf

EngineFactory = Callable[..., Engine]


@dataclass
class Runner:
    model: StoredModel
    engine: Engine
    load: LoadOptions
    context: ContextOptions
    num_ctx: int
    gpu_layers: int
    size: int
    size_vram: int
    duration: float  # keep-alive, seconds
    refcount: int = 0
    expires_at: float = 0.0  # wall clock
    loaded_at: float = field(default_factory=time.time)
    load_duration: float = 0.0  # seconds the load took (reported once, by the loading request)
    retired: bool = False  # taken out of service (unhealthy); closed when the last holder leaves
    draining: bool = False  # a request with other load options waits for it to go idle and unload
    num_batch: int = 0  # as requested (bounded); the context's n_batch may be cut to its n_ctx
    last_use: int = 0  # order of the last claim or release: VRAM eviction takes the least recent
    pinned_by_name: bool = False  # named in LLAMITA_PIN: never expires, never evicted
    _timer: asyncio.TimerHandle | None = None

    @property
    def key(self) -> str:
        return str(self.model.model_path)

    @property
    def healthy(self) -> bool:
        return bool(getattr(self.engine, "healthy", True))

    @property
    def pinned(self) -> bool:
        """Never evicted by another load: named in ``LLAMITA_PIN``, or kept alive forever."""
        return self.pinned_by_name or math.isinf(self.duration)

    @property
    def failure(self) -> str | None:
        """Why the engine stopped, when it did."""
        return None if self.healthy else str(getattr(self.engine, "failure", None) or "engine failed")

    def sizes(self) -> tuple[int, int]:
        """(size, size_vram) now: the load-time estimate plus a live embedding context."""
        embed_tokens = self.engine.stats().embed_n_ctx
        if not embed_tokens:
            return self.size, self.size_vram
        return _sizes(self.model, self.context, self.gpu_layers, embed_tokens)


class LoadTimeout(RuntimeError):
    """A model load that took longer than ``OLLAMA_LOAD_TIMEOUT`` (Ollama's words: a 500)."""


def _load_timeout_text(seconds: float) -> str:
    return f"the model did not load within OLLAMA_LOAD_TIMEOUT ({seconds:g}s)"


class Runners:
    def __init__(self, factory: EngineFactory = Engine, pins: Iterable[str] | None = None) -> None:
        self.factory = factory
        self.pins = [parse_name(p) for p in (config.pinned_models() if pins is None else pins)]
        self._pin_keys = {name.key for name in self.pins}
        self._preload: asyncio.Task[None] | None = None
        self.loaded: dict[str, Runner] = {}
        self._model_locks: dict[str, asyncio.Lock] = {}  # one load at a time per model file
        self._room = asyncio.Lock()  # evictions and GPU layers: one load's decision at a time
        self._pending: dict[str, tuple[int, int]] = {}  # loads in flight: (size, size_vram)
        self._uses = itertools.count(1)
        self._idle = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Any) -> None:
        """Fire-and-forget with a reference kept, so the task is not garbage-collected."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def acquire(self, model: StoredModel, options: dict[str, Any], keep_alive: float | None) -> Runner:
        """The model's runner, loaded if need be.

        A loaded, healthy, compatible runner is claimed at once, without a lock: a request
        for a loaded model must not wait behind any load.  Otherwise the model's own lock
        serialises its loads (other models load meanwhile).  A runner that a request with
        other load options is draining is not claimed, so that request is not starved.
        """
        plan = load_options(model, options)
        key = str(model.model_path)
        runner = self.loaded.get(key)
        if runner is not None and runner.healthy and not runner.draining and self._compatible(runner, plan):
            return self._claim(runner, keep_alive)
        async with self._model_locks.setdefault(key, asyncio.Lock()):
            runner = self.loaded.get(key)
            if runner is not None and not runner.healthy:
                log.warning("%s: %s; loading the model again", runner.model.short_name, runner.failure)
                await self._retire(runner)
                runner = None
            if runner is not None and not self._compatible(runner, plan):
                runner.draining = True
                await self._wait_idle_and_unload(runner)
                runner = None
            if runner is None:
                runner = await self._load(model, plan, keep_alive)
            return self._claim(runner, keep_alive)

    def _claim(self, runner: Runner, keep_alive: float | None) -> Runner:
        runner.refcount += 1
        runner.last_use = next(self._uses)
        runner.pinned_by_name = runner.pinned_by_name or self.is_pinned(runner.model.name)
        if runner.pinned_by_name:
            runner.duration = FOREVER
        elif keep_alive is not None:
            runner.duration = _duration(keep_alive)
        self._cancel_timer(runner)
        runner.expires_at = time.time() + min(runner.duration, 1e10)
        return runner

    def release(self, runner: Runner) -> None:
        runner.refcount -= 1
        runner.last_use = next(self._uses)
        if runner.refcount > 0:
            return
        if runner.retired:
            self._spawn(self._close_engine(runner))
            return
        self._spawn(self._notify_idle())
        if runner.duration <= 0:
            runner.expires_at = time.time()
            self._spawn(self._unload_if_idle(runner))
            return
        runner.expires_at = time.time() + min(runner.duration, 1e10)
        if math.isfinite(runner.duration):
            loop = asyncio.get_running_loop()
            runner._timer = loop.call_later(
                runner.duration, lambda: self._spawn(self._unload_if_idle(runner))
            )

    async def expire(self, model: StoredModel) -> bool:
        """keep_alive 0 with an empty prompt: unload once idle; True if it was loaded."""
        runner = self.loaded.get(str(model.model_path))
        if runner is None:
            return False
        if runner.pinned_by_name:
            return True  # LLAMITA_PIN: loaded for good
        runner.duration = 0
        runner.expires_at = time.time()
        if runner.refcount == 0:
            await self._unload_if_idle(runner)
        return True

    def ps(self) -> list[Runner]:
        return sorted(self.loaded.values(), key=lambda r: r.expires_at, reverse=True)

    def is_pinned(self, name: Name) -> bool:
        return name.key in self._pin_keys

    def load_pinned(self, store: Store) -> None:
        """Load the ``LLAMITA_PIN`` models in the background (start-up is not held up)."""
        if self.pins and self._preload is None:
            self._preload = asyncio.get_running_loop().create_task(preload(self, store))

    async def close(self) -> None:
        if self._preload is not None and not self._preload.done():
            await self._preload  # a load in a thread cannot be stopped: let it end, then unload
        for runner in list(self.loaded.values()):
            await self._unload(runner)

    # ---- internals ---------------------------------------------------------------------
    @staticmethod
    def _compatible(runner: Runner, plan: LoadPlan) -> bool:
        """Ollama's rule: an automatic num_gpu matches any loaded layer count."""
        gpu = runner.gpu_layers if plan.num_gpu == AUTO else plan.num_gpu
        return (
            gpu == runner.gpu_layers
            and replace(plan.load, n_gpu_layers=runner.load.n_gpu_layers) == runner.load
            and runner.num_ctx >= plan.num_ctx
            and runner.num_batch == plan.num_batch
            and same_knobs(runner.context, plan.knobs)
        )

    async def _load(self, model: StoredModel, plan: LoadPlan, keep_alive: float | None) -> Runner:
        context = context_options(
            plan.knobs,
            num_ctx=plan.num_ctx,
            num_batch=plan.num_batch,
            n_seq_max=plan.n_seq_max,
            num_thread=plan.num_thread,
        )
        assert model.model_path is not None
        key = str(model.model_path)
        async with self._room:
            gpu_layers = await self._make_room(model, context, plan.num_gpu)
            size, size_vram = _sizes(model, context, gpu_layers)
            self._pending[key] = (size, size_vram)
        load = replace(plan.load, n_gpu_layers=gpu_layers)
        per_key = config.max_queue_per_key()
        queues = {"max_queued_per_owner": per_key} if per_key else {}  # test factories lack it
        args = (model.model_path, load, context, config.max_queue(), config.step_target())
        started = time.monotonic()
        loading = asyncio.ensure_future(asyncio.to_thread(self.factory, *args, **queues))
        timeout = config.load_timeout()
        try:
            engine = await asyncio.wait_for(asyncio.shield(loading), None if math.isinf(timeout) else timeout)
        except TimeoutError:
            raise LoadTimeout(
                f"timed out waiting for llama-server to start - {_load_timeout_text(timeout)}"
            ) from None
        finally:
            if not loading.done():  # timed out or cancelled: the thread finishes the load, then it goes
                loading.add_done_callback(self._close_late_engine)
            del self._pending[key]
            self._spawn(self._notify_idle())  # a failed load frees its place in the count
        log.info(
            "loaded %s in %.2fs (ctx %d x %d, %d GPU layers)",
            model.short_name,
            time.monotonic() - started,
            plan.num_ctx,
            plan.parallel,
            gpu_layers,
        )
        duration = _duration(keep_alive) if keep_alive is not None else config.keep_alive()
        runner = Runner(model, engine, load, context, plan.num_ctx, gpu_layers, size, size_vram, duration)
        runner.pinned_by_name = self.is_pinned(model.name)
        runner.load_duration = time.monotonic() - started
        runner.num_batch = plan.num_batch
        self.loaded[runner.key] = runner
        return runner

    def _close_late_engine(self, loading: asyncio.Future[Any]) -> None:
        """The engine of a load nobody waits for any more (past OLLAMA_LOAD_TIMEOUT, or its
        request went away) is closed as soon as it exists."""
        if not loading.cancelled() and loading.exception() is None:
            engine = loading.result()
            self._spawn(asyncio.to_thread(engine.close))
            log.info("closed an engine whose load was given up")

    async def _make_room(self, model: StoredModel, context: ContextOptions, num_gpu: int) -> int:
        """Evict idle runners for the count limit and memory; the GPU layers to load with.

        For the count limit and RAM, the idle runner with the shortest keep-alive goes first;
        over the count limit with nothing idle, wait for a runner to go idle (Ollama does the
        same).  On a GPU, while the model does not fit whole in free VRAM, the least recently
        used idle runner holding VRAM goes.  Short of memory with nothing idle to evict, load
        anyway (fewer GPU layers; llama.cpp decides about RAM): a busy model is never
        unloaded under its users.  Loads in flight count as loaded.  Pinned runners are never
        evicted: where only they could make room, :class:`PinnedMemory` (see the module docstring).
        """
        limit = config.max_loaded_models() or 3
        info = model.gguf
        est = estimate(info, context.cells, context.n_seq_max, _embed_tokens(info)) if info else None
        needed = est.total if est is not None else 0
        every_layer = est.n_layers + 1 if est is not None else 0
        wanted = every_layer if num_gpu == AUTO else num_gpu
        vram_needed = est.vram_for(wanted) + GPU_RESERVE if est is not None and wanted else 0
        while True:
            free = await self._free_vram() if vram_needed else None
            vram_short = free is not None and vram_needed > free
            over_count = self._over_count(limit)
            available = available_memory()
            if available is not None:
                available -= sum(size for size, _ in self._pending.values())
            short = available is not None and needed * 1.1 > available
            idle = [r for r in self.loaded.values() if r.refcount == 0 and not r.pinned]  # evictable
            holding_vram = [r for r in idle if r.size_vram > 0]
            pinned = [r for r in self.loaded.values() if r.pinned]
            only_pinned = bool(pinned) and len(pinned) == len(self.loaded) and not self._pending
            if (over_count or short) and idle:
                await self._unload(min(idle, key=lambda r: (r.duration, r.key)))
            elif vram_short and holding_vram:
                await self._unload(min(holding_vram, key=lambda r: r.last_use))
            elif (over_count and only_pinned) or (short and any(r.refcount == 0 for r in pinned)):
                raise PinnedMemory(model.short_name, pinned)
            elif over_count:
                async with self._idle:  # checked again under the condition: no lost wake-up
                    if self._over_count(limit) and not self._evictable():
                        await self._idle.wait()
            else:
                if short:
                    log.warning(
                        "%d MB free for a model needing %d MB; loading anyway",
                        (available or 0) >> 20,
                        needed >> 20,
                    )
                break
        if num_gpu != AUTO or est is None:
            return wanted
        return layers_that_fit(est, free) if free is not None else est.n_layers + 1

    def _evictable(self) -> bool:
        return any(r.refcount == 0 and not r.pinned for r in self.loaded.values())

    def _over_count(self, limit: int) -> bool:
        return len(self.loaded) + len(self._pending) >= limit

    async def _free_vram(self) -> int | None:
        """Free VRAM less what loads in flight will take; nvidia-smi runs off the event loop."""
        free = await asyncio.to_thread(free_vram)
        return None if free is None else free - sum(vram for _, vram in self._pending.values())

    async def _wait_idle_and_unload(self, runner: Runner) -> None:
        while runner.refcount > 0:
            async with self._idle:
                await self._idle.wait()
        await self._unload(runner)

    async def _retire(self, runner: Runner) -> None:
        """Take a failed runner out of service; close it now if idle, else at its last release."""
        self._cancel_timer(runner)
        if self.loaded.get(runner.key) is runner:
            del self.loaded[runner.key]
        runner.retired = True
        if runner.refcount == 0:
            await self._close_engine(runner)

    async def _close_engine(self, runner: Runner) -> None:
        await asyncio.to_thread(runner.engine.close)
        log.info("closed the failed engine of %s", runner.model.short_name)
        async with self._idle:
            self._idle.notify_all()

    async def _unload_if_idle(self, runner: Runner) -> None:
        expired = runner.expires_at <= time.time()
        if runner.refcount == 0 and self.loaded.get(runner.key) is runner and expired:
            await self._unload(runner)

    async def _unload(self, runner: Runner) -> None:
        """Unload a loaded runner; one already unloaded (evicted while drained, say) is left."""
        self._cancel_timer(runner)
        if self.loaded.get(runner.key) is not runner:
            return
        del self.loaded[runner.key]
        await asyncio.to_thread(runner.engine.close)
        log.info("unloaded %s", runner.model.short_name)
        async with self._idle:
            self._idle.notify_all()

    @staticmethod
    def _cancel_timer(runner: Runner) -> None:
        if runner._timer is not None:
            runner._timer.cancel()
            runner._timer = None

    async def _notify_idle(self) -> None:
        async with self._idle:
            self._idle.notify_all()


def _duration(keep_alive: float) -> float:
    return FOREVER if keep_alive < 0 else keep_alive


def _sizes(
    model: StoredModel, context: ContextOptions, gpu_layers: int, embed_tokens: int | None = None
) -> tuple[int, int]:
    """(size, size_vram) of a model with ``context``; an embedding model counts a minimal
    embedding context from the start, any model counts the live one (``embed_tokens``)."""
    info = model.gguf
    if info is None:
        return 0, 0
    tokens = _embed_tokens(info) if embed_tokens is None else embed_tokens
    est = estimate(info, context.cells, context.n_seq_max, tokens)
    return est.total, est.vram_for(gpu_layers) if gpu_layers else 0


def _embed_tokens(info: GGUFInfo) -> int:
    """Embedding models (a pooling type in the GGUF) will need an embedding context."""
    pooling = info.kv.get(f"{info.architecture}.pooling_type")
    return EMBED_MIN_TOKENS if isinstance(pooling, int) and pooling > 0 else 0
