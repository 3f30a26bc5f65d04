"""Model-level scheduling with a fake engine factory (no llama.cpp): keep-alive, reuse, eviction."""

from __future__ import annotations

import asyncio
import os
from typing import ClassVar

import pytest

from llamita.server.model.model import load_model
from llamita.server.runtime.runners import LoadTimeout, Runners
from llamita.server.store.blobs import Store
from llamita.server.store.names import require_name


class FakeEngine:
    made: ClassVar[list[FakeEngine]] = []

    def __init__(self, path, load, context, max_queue, step_target) -> None:
        self.path, self.load, self.context = path, load, context
        self.closed = False
        FakeEngine.made.append(self)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def models(store: Store, tmp_path):
    """Three models over three different GGUFs (runners are keyed by the model file, as in Ollama)."""
    from ggufgen import write_tiny_gguf
    from llamita.server.model.create import import_gguf

    for seed, name in enumerate(("a", "b", "c")):
        import_gguf(store, name, write_tiny_gguf(tmp_path / f"{name}.gguf", seed=seed))
    FakeEngine.made = []
    return {n: load_model(store, require_name(n)) for n in ("a", "b", "c")}


def run(coro):
    return asyncio.run(coro)


def test_reuse_and_reload_by_context(models) -> None:
    async def scenario():
        runners = Runners(FakeEngine)
        r1 = await runners.acquire(models["a"], {"num_ctx": 256}, None)
        runners.release(r1)
        r2 = await runners.acquire(models["a"], {"num_ctx": 128}, None)  # smaller: reuse
        runners.release(r2)
        r3 = await runners.acquire(
            models["a"], {"num_ctx": 512}, None
        )  # larger (the trained maximum): reload
        runners.release(r3)
        await runners.close()
        return r1, r2, r3

    r1, r2, r3 = run(scenario())
    assert r1 is r2 and r3 is not r1
    assert len(FakeEngine.made) == 2 and FakeEngine.made[0].closed


def test_keep_alive_zero_unloads_and_negative_is_forever(models) -> None:
    async def scenario():
        runners = Runners(FakeEngine)
        r = await runners.acquire(models["a"], {}, 0)
        runners.release(r)
        await asyncio.sleep(0.05)
        gone = "a" not in {x.model.name.model for x in runners.ps()}
        forever = await runners.acquire(models["b"], {}, -1)
        runners.release(forever)
        await asyncio.sleep(0.05)
        kept = [x.model.name.model for x in runners.ps()]
        short = await runners.acquire(models["c"], {}, 0.1)
        runners.release(short)
        await asyncio.sleep(0.3)
        after = [x.model.name.model for x in runners.ps()]
        await runners.close()
        return gone, kept, after, forever.expires_at

    gone, kept, after, expires = run(scenario())
    assert gone and kept == ["b"] and after == ["b"]
    assert expires > 1e9


def test_max_loaded_evicts_idle_first(models, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_MAX_LOADED_MODELS", "2")

    async def scenario():
        runners = Runners(FakeEngine)
        a = await runners.acquire(models["a"], {}, 60)
        b = await runners.acquire(models["b"], {}, 60)
        runners.release(b)  # b idle, a busy
        c = await runners.acquire(models["c"], {}, 60)
        loaded = sorted(x.model.name.model for x in runners.ps())
        runners.release(a)
        runners.release(c)
        await runners.close()
        return loaded

    assert run(scenario()) == ["a", "c"]


def test_expire_unloads_an_idle_model(models) -> None:
    async def scenario():
        runners = Runners(FakeEngine)
        r = await runners.acquire(models["a"], {}, None)
        runners.release(r)
        was_loaded = await runners.expire(models["a"])
        return was_loaded, runners.ps(), await runners.expire(models["b"])

    was_loaded, left, other = run(scenario())
    assert was_loaded and left == [] and not other


def test_an_unhealthy_engine_is_replaced_and_closed_after_its_last_holder(models) -> None:
    async def scenario():
        runners = Runners(FakeEngine)
        held = await runners.acquire(models["a"], {}, 60)
        held.engine.healthy, held.engine.failure = False, "the engine thread died: boom"
        shown = [(r.healthy, r.failure) for r in runners.ps()]
        fresh = await runners.acquire(models["a"], {}, 60)  # does not wait for ``held``
        closed_while_held = held.engine.closed
        runners.release(held)
        await asyncio.gather(*runners._tasks)
        runners.release(fresh)
        await runners.close()
        return held, fresh, shown, closed_while_held

    held, fresh, shown, closed_while_held = run(scenario())
    assert shown == [(False, "the engine thread died: boom")]
    assert fresh is not held and fresh.healthy
    assert not closed_while_held and held.engine.closed
    assert len(FakeEngine.made) == 2


def test_an_idle_unhealthy_engine_is_closed_at_once(models) -> None:
    async def scenario():
        runners = Runners(FakeEngine)
        r = await runners.acquire(models["a"], {}, 60)
        runners.release(r)
        r.engine.healthy = False
        again = await runners.acquire(models["a"], {}, 60)
        runners.release(again)
        await runners.close()
        return r, again

    r, again = run(scenario())
    assert r.engine.closed and again is not r


@pytest.mark.parametrize(
    ("options", "check"),
    [
        ({"num_batch": 1}, lambda c, n: c.n_batch == c.n_seq_max),  # llama.cpp aborted below n_seq_max
        ({"num_batch": -7}, lambda c, n: c.n_batch == 512),
        ({"num_batch": 1.5}, lambda c, n: c.n_batch == c.n_seq_max),
        ({"num_batch": -1e30}, lambda c, n: c.n_batch == 512),
        ({"num_batch": 2_000_000}, lambda c, n: c.n_seq_max <= c.n_batch <= min(8192, c.n_ctx)),
        ({"num_batch": float("inf")}, lambda c, n: c.n_batch == 512),
        ({"num_ctx": -1}, lambda c, n: n == 512),  # the tiny model's trained context caps the default
        ({"num_ctx": 10**40}, lambda c, n: n == 512),
        ({"num_ctx": 1}, lambda c, n: n == 4),
        ({"num_thread": 10**9}, lambda c, n: 1 <= c.n_threads <= (os.cpu_count() or 1)),
        ({"num_thread": -3}, lambda c, n: c.n_threads == (os.cpu_count() or 1)),
    ],
)
def test_resource_options_are_bounded(models, options, check) -> None:
    async def scenario():
        runners = Runners(FakeEngine)
        r = await runners.acquire(models["a"], options, 0)
        runners.release(r)
        await runners.close()
        return r

    r = run(scenario())
    assert check(r.context, r.num_ctx), r.context


def test_num_gpu_is_at_most_the_layer_count(models) -> None:
    from llamita.server.runtime.loadplan import load_options

    plan = load_options(models["a"], {"num_gpu": 10**6})
    assert plan.num_gpu == plan.load.n_gpu_layers <= 3  # 2 blocks + the output layer (0 without GPU)


def test_recurrent_models_run_one_request_at_a_time(store: Store, tmp_path, monkeypatch) -> None:
    from ggufgen import write_tiny_lfm2_gguf, write_tiny_mamba_gguf
    from llamita.server.model.create import import_gguf

    monkeypatch.setenv("OLLAMA_NUM_PARALLEL", "4")
    import_gguf(store, "mamba", write_tiny_mamba_gguf(tmp_path / "m.gguf"))
    import_gguf(store, "lfm2", write_tiny_lfm2_gguf(tmp_path / "l.gguf"))

    async def scenario(name: str):
        runners = Runners(FakeEngine)
        r = await runners.acquire(load_model(store, require_name(name)), {"num_batch": 1}, 0)
        runners.release(r)
        await runners.close()
        return r

    for name in ("mamba", "lfm2"):  # lfm2's per-layer head_count_kv used to fail the estimate
        r = run(scenario(name))
        assert r.context.n_ctx == r.num_ctx and r.context.n_seq_max == 2 and r.context.n_batch == 2
        assert r.size > 0


def test_a_smaller_context_reuses_the_runner_whatever_its_batch_was_cut_to(models) -> None:
    """num_batch is cut to the context's cells, but reuse compares what was asked for."""

    async def scenario():
        runners = Runners(FakeEngine)
        big = await runners.acquire(models["a"], {"num_ctx": 512}, None)
        runners.release(big)
        small = await runners.acquire(models["a"], {"num_ctx": 16}, None)  # 16 x 4 < 512 cells
        runners.release(small)
        tiny = await runners.acquire(models["b"], {"num_ctx": 16, "num_batch": 4096}, None)
        runners.release(tiny)
        await runners.close()
        return big, small, tiny

    big, small, tiny = run(scenario())
    assert small is big and len(FakeEngine.made) == 2
    assert tiny.context.n_batch == tiny.context.n_ctx == 64  # never more than the cells


def test_a_loaded_model_is_not_kept_waiting_by_another_models_load(models) -> None:
    import threading

    release_load, loading = threading.Event(), threading.Event()

    class SlowForB(FakeEngine):
        def __init__(self, path, *args) -> None:
            if path == models["b"].model_path:
                loading.set()
                assert release_load.wait(600), "the test never let the load finish"
            super().__init__(path, *args)

    async def scenario():
        runners = Runners(SlowForB)
        a = await runners.acquire(models["a"], {}, None)
        runners.release(a)
        loading_b = asyncio.ensure_future(runners.acquire(models["b"], {}, None))
        await asyncio.to_thread(loading.wait, 600)  # b's load is under way (its factory is blocked)
        try:  # claimed without the lock; the bound only turns a regression into a failure, not a hang
            again = await asyncio.wait_for(runners.acquire(models["a"], {}, None), 120)
            waited = loading_b.done()
        finally:
            release_load.set()
        b = await loading_b
        runners.release(again)
        runners.release(b)
        await runners.close()
        return again is a, waited

    same, waited = run(scenario())
    assert same and not waited


def test_a_runner_being_drained_for_other_options_is_not_claimed(models) -> None:
    async def scenario():
        runners = Runners(FakeEngine)
        held = await runners.acquire(models["a"], {"num_ctx": 128}, None)
        bigger = asyncio.ensure_future(runners.acquire(models["a"], {"num_ctx": 512}, None))
        while not held.draining:
            await asyncio.sleep(0)
        small = asyncio.ensure_future(runners.acquire(models["a"], {"num_ctx": 128}, None))
        for _ in range(20):
            await asyncio.sleep(0)
        claimed_old = held.refcount > 1 or small.done()
        runners.release(held)  # the drain completes: the bigger context loads
        new = await asyncio.wait_for(bigger, 120)  # a bound: a claimed old runner would never drain
        runners.release(new)
        reused = await small  # 128 fits in the new 512 runner
        runners.release(reused)
        await runners.close()
        return claimed_old, new is not held, reused is new

    claimed_old, reloaded, reused = run(scenario())
    assert not claimed_old and reloaded and reused


# ---- GPU layers, per-model load locks, VRAM eviction (a GPU simulated by monkeypatching) -------


class FakeGPU:
    """Free VRAM as a GPU of ``total`` bytes reports it with the loaded runners' VRAM in use."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, total: int) -> None:
        from llamita.server.runtime import loadplan
        from llamita.server.runtime import runners as module

        self.total = total
        self.runners: Runners | None = None
        self.reads_on_loop = 0
        self.reads = 0
        monkeypatch.setattr(loadplan, "supports_gpu", lambda: True)
        monkeypatch.setattr(module, "free_vram", self.free)

    def free(self) -> int:
        import threading

        self.reads += 1
        self.reads_on_loop += threading.current_thread() is threading.main_thread()
        assert self.runners is not None
        return self.total - sum(r.size_vram for r in self.runners.loaded.values())

    def attach(self, runners: Runners) -> Runners:
        self.runners = runners
        return runners


def full_offload(models, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """(VRAM, GPU layers) of one tiny model loaded whole on a roomy GPU (the three are alike)."""

    async def scenario():
        with monkeypatch.context() as patch:
            gpu = FakeGPU(patch, 1 << 40)
            runners = gpu.attach(Runners(FakeEngine))
            r = await runners.acquire(models["a"], {}, None)
            runners.release(r)
            await runners.close()
            return r.size_vram, r.gpu_layers

    vram, layers = run(scenario())
    FakeEngine.made = []
    assert vram > 0 and layers == 3  # 2 blocks + the output layer
    return vram, layers


def test_automatic_num_gpu_never_reloads_because_free_vram_moved(models, monkeypatch) -> None:
    """Free VRAM drops by the loaded model's own size: recomputing the layer count per request
    gave fewer layers, another key, and a reload every other request."""
    from llamita.server.runtime.memory import GPU_RESERVE

    vram, every_layer = full_offload(models, monkeypatch)
    gpu = FakeGPU(monkeypatch, GPU_RESERVE + vram + vram // 2)  # fits whole once, not twice

    async def scenario():
        runners = gpu.attach(Runners(FakeEngine))
        first = await runners.acquire(models["a"], {}, None)
        runners.release(first)
        reads_after_load = gpu.reads
        again = await runners.acquire(models["a"], {"num_gpu": -1}, None)
        runners.release(again)
        explicit_same = await runners.acquire(models["a"], {"num_gpu": every_layer}, None)
        runners.release(explicit_same)
        reuse_reads = gpu.reads - reads_after_load
        explicit_other = await runners.acquire(models["a"], {"num_gpu": 1}, None)
        runners.release(explicit_other)
        await runners.close()
        return first, again, explicit_same, explicit_other, reuse_reads

    first, again, explicit_same, explicit_other, reuse_reads = run(scenario())
    assert first.gpu_layers == every_layer and first.engine.load.n_gpu_layers == every_layer
    assert again is first and explicit_same is first and reuse_reads == 0
    assert explicit_other is not first and explicit_other.engine.load.n_gpu_layers == 1
    assert len(FakeEngine.made) == 2
    assert gpu.reads > 0 and gpu.reads_on_loop == 0  # nvidia-smi never runs on the event loop


def test_a_models_load_does_not_block_another_models_load_and_one_model_loads_once(models) -> None:
    import threading

    release_b, loading_b = threading.Event(), threading.Event()
    release_c, loading_c = threading.Event(), threading.Event()

    class Blocking(FakeEngine):
        def __init__(self, path, *args) -> None:
            for model, entered, release in (("b", loading_b, release_b), ("c", loading_c, release_c)):
                if path == models[model].model_path:
                    entered.set()
                    assert release.wait(600), "the test never let the load finish"
            super().__init__(path, *args)

    async def scenario():
        runners = Runners(Blocking)
        b = asyncio.ensure_future(runners.acquire(models["b"], {}, None))
        await asyncio.to_thread(loading_b.wait, 600)
        try:  # the bound only turns a regression into a failure, not a hang
            a = await asyncio.wait_for(runners.acquire(models["a"], {}, None), 120)
            b_was_loading = not b.done()
            c1 = asyncio.ensure_future(runners.acquire(models["c"], {}, None))
            await asyncio.to_thread(loading_c.wait, 600)
            c2 = asyncio.ensure_future(runners.acquire(models["c"], {}, None))
        finally:
            release_b.set()
            release_c.set()
        held = [a, await b, await c1, await c2]
        for r in held:
            runners.release(r)
        await runners.close()
        return held, b_was_loading

    (a, b, c1, c2), b_was_loading = run(scenario())
    assert b_was_loading and a.model.name.model == "a" and b.model.name.model == "b"
    assert c1 is c2 and c1.refcount == 0
    assert [e.path for e in FakeEngine.made].count(models["c"].model_path) == 1


def test_idle_runners_holding_vram_are_evicted_least_recently_used_first(models, monkeypatch) -> None:
    from llamita.server.runtime.memory import GPU_RESERVE

    vram, every_layer = full_offload(models, monkeypatch)
    gpu = FakeGPU(monkeypatch, GPU_RESERVE + 2 * vram + vram // 2)  # two fit whole, not three

    async def scenario():
        runners = gpu.attach(Runners(FakeEngine))
        a = await runners.acquire(models["a"], {}, 60)  # the shortest keep-alive, first by name
        runners.release(a)
        b = await runners.acquire(models["b"], {}, 600)
        runners.release(b)
        runners.release(await runners.acquire(models["a"], {}, None))  # b is now the least recent
        c = await runners.acquire(models["c"], {}, None)
        after_c = sorted(r.model.name.model for r in runners.ps())
        closed = (a.engine.closed, b.engine.closed)
        held_a = await runners.acquire(models["a"], {}, None)
        partial_b = await runners.acquire(models["b"], {}, None)  # a and c busy: nothing to evict
        after_b = sorted(r.model.name.model for r in runners.ps())
        for r in (c, held_a, partial_b):
            runners.release(r)
        await runners.close()
        return c, partial_b, after_c, after_b, closed

    c, partial_b, after_c, after_b, closed = run(scenario())
    assert after_c == ["a", "c"] and closed == (False, True)
    assert c.gpu_layers == every_layer
    assert after_b == ["a", "b", "c"] and 0 <= partial_b.gpu_layers < every_layer


def test_without_a_gpu_free_vram_is_never_read_and_nothing_is_evicted_for_it(models, monkeypatch) -> None:
    from llamita.server.runtime import loadplan
    from llamita.server.runtime.memory import GPU_RESERVE

    gpu = FakeGPU(monkeypatch, GPU_RESERVE)  # no room at all, if it were asked
    monkeypatch.setattr(loadplan, "supports_gpu", lambda: False)

    async def scenario():
        runners = gpu.attach(Runners(FakeEngine))
        for name in ("a", "b", "c"):
            runners.release(await runners.acquire(models[name], {}, None))
        loaded = sorted(r.model.name.model for r in runners.ps())
        await runners.close()
        return loaded

    assert run(scenario()) == ["a", "b", "c"]
    assert gpu.reads == 0 and all(e.load.n_gpu_layers == 0 for e in FakeEngine.made)


def test_a_failed_load_gives_back_its_place(models, monkeypatch) -> None:
    monkeypatch.setenv("OLLAMA_MAX_LOADED_MODELS", "1")

    class FailsForB(FakeEngine):
        def __init__(self, path, *args) -> None:
            if path == models["b"].model_path:
                raise RuntimeError("llama.cpp could not load it")
            super().__init__(path, *args)

    async def scenario():
        runners = Runners(FailsForB)
        with pytest.raises(RuntimeError):
            await runners.acquire(models["b"], {}, None)
        # the bound only turns a leaked place (a wait for an idle runner that never comes) into a failure
        a = await asyncio.wait_for(runners.acquire(models["a"], {}, None), 120)
        runners.release(a)
        loaded = [r.model.name.model for r in runners.ps()]
        await runners.close()
        return loaded

    assert run(scenario()) == ["a"]


def test_a_load_past_ollama_load_timeout_fails_and_its_engine_is_closed_later(models, monkeypatch) -> None:
    """The load blocks until the test lets it go, so it cannot finish inside 1ns (no timing race):
    the request gets Ollama's timeout error, and the engine, once the thread has made it, is closed."""
    import threading

    gate = threading.Event()

    class SlowEngine(FakeEngine):
        def __init__(self, *args) -> None:
            gate.wait(30)
            super().__init__(*args)

    async def scenario():
        runners = Runners(SlowEngine)
        monkeypatch.setenv("OLLAMA_LOAD_TIMEOUT", "1ns")
        with pytest.raises(LoadTimeout, match=r"^timed out waiting for llama-server to start - "):
            await runners.acquire(models["a"], {}, None)
        assert runners.ps() == [] and runners._pending == {}
        gate.set()
        for _ in range(500):  # the abandoned load ends in its thread, then its engine is closed
            if FakeEngine.made and FakeEngine.made[0].closed:
                break
            await asyncio.sleep(0.01)
        monkeypatch.setenv("OLLAMA_LOAD_TIMEOUT", "0")  # no limit
        runner = await runners.acquire(models["a"], {}, None)
        runners.release(runner)
        await runners.close()
        return runner

    runner = run(scenario())
    assert [e.closed for e in FakeEngine.made] == [True, True]
    assert runner.engine is FakeEngine.made[1]
