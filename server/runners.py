"""Which models are loaded: Ollama's ``sched.go`` for llamita (one ``Engine`` per model).

A request ``acquire``s a runner (loading it, or reusing a loaded one whose load options are
compatible) and ``release``s it when done.  When no request holds a runner, it stays loaded
for its keep-alive duration and is then unloaded; ``keep_alive`` 0 unloads at once, a
negative value keeps it forever.  Loading happens one model at a time; when
``OLLAMA_MAX_LOADED_MODELS`` is reached, or memory is short, the idle runner that expires
soonest is evicted first.

Compatibility (Ollama reloads on any runner-option difference, a top user complaint): a
loaded model is reused when its context is at least the requested ``num_ctx`` and the GPU
layer count, batch size, mmap and adapters match.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import config
from .engine.core import Engine
from .engine.llama import ContextOptions, LoadOptions, supports_gpu
from .memory import estimate, free_vram, layers_that_fit
from .model import Model

log = logging.getLogger("llamita.runners")

DEFAULT_NUM_CTX = 4096
FOREVER = math.inf

EngineFactory = Callable[..., Engine]


@dataclass
class Runner:
    model: Model
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
    _timer: asyncio.TimerHandle | None = None

    @property
    def key(self) -> str:
        return str(self.model.model_path)


def load_options(model: Model, options: dict[str, Any]) -> tuple[LoadOptions, int, int, int, int]:
    """(LoadOptions, num_ctx, num_batch, num_thread, gpu_layers) for a request's merged options."""
    info = model.gguf
    num_ctx = int(options.get("num_ctx") or 0) or config.context_length() or DEFAULT_NUM_CTX
    if info is not None and info.context_length:
        num_ctx = min(num_ctx, info.context_length)
    num_ctx = max(num_ctx, 4)
    num_batch = max(int(options.get("num_batch") or 512), 1)
    num_thread = int(options.get("num_thread") or 0) or (os.cpu_count() or 1)
    num_gpu = options.get("num_gpu")
    num_gpu = -1 if num_gpu is None else int(num_gpu)
    gpu_layers = 0
    if num_gpu != 0 and supports_gpu():
        if num_gpu > 0:
            gpu_layers = num_gpu
        elif info is not None:
            free = free_vram()
            est = estimate(info, num_ctx * config.num_parallel())
            gpu_layers = layers_that_fit(est, free) if free is not None else est.n_layers + 1
    use_mmap = options.get("use_mmap")
    load = LoadOptions(
        n_gpu_layers=gpu_layers,
        use_mmap=True if use_mmap is None else bool(use_mmap),
        lora_paths=tuple(str(p) for p in model.adapter_paths),
    )
    return load, num_ctx, num_batch, num_thread, gpu_layers


class Runners:
    def __init__(self, factory: EngineFactory = Engine) -> None:
        self.factory = factory
        self.loaded: dict[str, Runner] = {}
        self._load_lock = asyncio.Lock()
        self._idle = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Any) -> None:
        """Fire-and-forget with a reference kept, so the task is not garbage-collected."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def acquire(self, model: Model, options: dict[str, Any], keep_alive: float | None) -> Runner:
        load, num_ctx, num_batch, num_thread, gpu_layers = load_options(model, options)
        async with self._load_lock:
            runner = self.loaded.get(str(model.model_path))
            if runner is not None and not self._compatible(runner, load, num_ctx, num_batch):
                await self._wait_idle_and_unload(runner)
                runner = None
            if runner is None:
                runner = await self._load(model, load, num_ctx, num_batch, num_thread, gpu_layers, keep_alive)
            runner.refcount += 1
            if keep_alive is not None:
                runner.duration = _duration(keep_alive)
            self._cancel_timer(runner)
            runner.expires_at = time.time() + min(runner.duration, 1e10)
            return runner

    def release(self, runner: Runner) -> None:
        runner.refcount -= 1
        if runner.refcount > 0:
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

    async def expire(self, model: Model) -> bool:
        """keep_alive 0 with an empty prompt: unload once idle; True if it was loaded."""
        runner = self.loaded.get(str(model.model_path))
        if runner is None:
            return False
        runner.duration = 0
        runner.expires_at = time.time()
        if runner.refcount == 0:
            await self._unload_if_idle(runner)
        return True

    def ps(self) -> list[Runner]:
        return sorted(self.loaded.values(), key=lambda r: r.expires_at, reverse=True)

    async def close(self) -> None:
        for runner in list(self.loaded.values()):
            await self._unload(runner)

    # ---- internals ---------------------------------------------------------------------
    @staticmethod
    def _compatible(runner: Runner, load: LoadOptions, num_ctx: int, num_batch: int) -> bool:
        return runner.load == load and runner.num_ctx >= num_ctx and runner.context.n_batch == num_batch

    async def _load(
        self,
        model: Model,
        load: LoadOptions,
        num_ctx: int,
        num_batch: int,
        num_thread: int,
        gpu_layers: int,
        keep_alive: float | None,
    ) -> Runner:
        parallel = config.num_parallel()
        await self._make_room(_sizes(model, num_ctx * parallel, 0)[0])
        context = ContextOptions(
            n_ctx=num_ctx * parallel,
            n_ctx_seq=num_ctx,
            n_batch=num_batch,
            n_seq_max=min(parallel * 2, 256),  # spare sequences keep superseded editors' KV
            n_threads=num_thread,
            flash_attn=_flash_attention(),
        )
        assert model.model_path is not None
        started = time.monotonic()
        engine = await asyncio.to_thread(
            self.factory, model.model_path, load, context, config.max_queue(), config.step_target()
        )
        log.info(
            "loaded %s in %.2fs (ctx %d x %d, %d GPU layers)",
            model.short_name,
            time.monotonic() - started,
            num_ctx,
            parallel,
            gpu_layers,
        )
        size, size_vram = _sizes(model, num_ctx * parallel, gpu_layers)
        duration = _duration(keep_alive) if keep_alive is not None else config.keep_alive()
        runner = Runner(model, engine, load, context, num_ctx, gpu_layers, size, size_vram, duration)
        runner.load_duration = time.monotonic() - started
        self.loaded[runner.key] = runner
        return runner

    async def _make_room(self, needed: int) -> None:
        """Evict idle runners (shortest keep-alive first) for the count limit and for memory.

        Over the count limit with nothing idle, wait for a runner to go idle (Ollama does the
        same).  Short of memory with nothing idle, load anyway and let llama.cpp decide: a
        busy model is never unloaded under its users.
        """
        limit = config.max_loaded_models() or 3
        while self.loaded:
            over_count = len(self.loaded) >= limit
            available = available_memory()
            short = available is not None and needed * 1.1 > available
            if not over_count and not short:
                return
            idle = [r for r in self.loaded.values() if r.refcount == 0]
            if idle:
                await self._unload(min(idle, key=lambda r: (r.duration, r.key)))
            elif over_count:
                async with self._idle:
                    await self._idle.wait()
            else:
                log.warning(
                    "%d MB free for a model needing %d MB; loading anyway",
                    (available or 0) >> 20,
                    needed >> 20,
                )
                return

    async def _wait_idle_and_unload(self, runner: Runner) -> None:
        while runner.refcount > 0:
            async with self._idle:
                await self._idle.wait()
        await self._unload(runner)

    async def _unload_if_idle(self, runner: Runner) -> None:
        expired = runner.expires_at <= time.time()
        if runner.refcount == 0 and self.loaded.get(runner.key) is runner and expired:
            await self._unload(runner)

    async def _unload(self, runner: Runner) -> None:
        self._cancel_timer(runner)
        if self.loaded.get(runner.key) is runner:
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


def available_memory() -> int | None:
    """Bytes of RAM the kernel says a new allocation can get (Linux), else None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _duration(keep_alive: float) -> float:
    return FOREVER if keep_alive < 0 else keep_alive


def _flash_attention() -> bool | None:
    value = config.var("OLLAMA_FLASH_ATTENTION")
    return None if not value else config.env_bool("OLLAMA_FLASH_ATTENTION")


def _sizes(model: Model, n_ctx_total: int, gpu_layers: int) -> tuple[int, int]:
    info = model.gguf
    if info is None:
        return 0, 0
    est = estimate(info, n_ctx_total)
    return est.total, est.vram_for(gpu_layers) if gpu_layers else 0
