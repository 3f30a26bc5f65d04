"""Pinned models (``LLAMITA_PIN``, ``keep_alive`` -1) with a fake engine factory: never evicted by
other loads, a 503 that names them where only they could make room, no expiry, start-up load."""

from __future__ import annotations

import asyncio

import pytest

from llamita.server.engine import QueueFull
from llamita.server.model.model import load_model
from llamita.server.runtime import runners as runners_module
from llamita.server.runtime.pins import PinnedMemory
from llamita.server.runtime.runners import Runners
from llamita.server.store.blobs import Store
from llamita.server.store.names import require_name

from .test_runners import FakeEngine, run


@pytest.fixture
def models(store: Store, tmp_path):
    """Three models over three generated GGUFs (as in ``test_runners``)."""
    from ggufgen import write_tiny_gguf
    from llamita.server.model.create import import_gguf

    for seed, name in enumerate(("a", "b", "c")):
        import_gguf(store, name, write_tiny_gguf(tmp_path / f"{name}.gguf", seed=seed))
    FakeEngine.made = []
    return {n: load_model(store, require_name(n)) for n in ("a", "b", "c")}


def loaded(runners: Runners) -> list[str]:
    return sorted(r.model.name.model for r in runners.ps())


async def use(runners: Runners, model, keep_alive: float | None = 60) -> None:
    runners.release(await runners.acquire(model, {}, keep_alive))


async def settle(runners: Runners) -> None:
    """Let the unload tasks that releases spawned run to their end."""
    while runners._tasks:
        await asyncio.gather(*list(runners._tasks))


def test_a_pinned_model_survives_a_load_storm(models, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_MAX_LOADED_MODELS", "2")

    async def scenario() -> list[list[str]]:
        runners = Runners(FakeEngine, pins=["a"])
        await use(runners, models["a"], keep_alive=0)  # a pinned name ignores keep_alive, 0 too
        await settle(runners)
        seen = [loaded(runners)]
        for name in ("b", "c", "b", "c", "b"):
            await use(runners, models[name])
            seen.append(loaded(runners))
        assert await runners.expire(models["a"])  # an explicit unload leaves it too
        await settle(runners)
        seen.append(loaded(runners))
        await runners.close()
        return seen

    assert run(scenario()) == [["a"], ["a", "b"], ["a", "c"], ["a", "b"], ["a", "c"], ["a", "b"], ["a", "b"]]


def test_keep_alive_forever_pins_and_a_finite_keep_alive_unpins(models, monkeypatch) -> None:
    monkeypatch.setenv("OLLAMA_MAX_LOADED_MODELS", "2")

    async def scenario() -> tuple[list[str], list[str]]:
        runners = Runners(FakeEngine, pins=[])
        await use(runners, models["a"], keep_alive=-1)
        for name in ("b", "c", "b"):
            await use(runners, models[name])
        storm = loaded(runners)
        await use(runners, models["a"], keep_alive=60)  # no longer forever: evictable again
        await use(runners, models["c"])
        after = loaded(runners)
        await runners.close()
        return storm, after

    storm, after = run(scenario())
    assert storm == ["a", "b"] and len(after) == 2 and "c" in after


def test_every_loaded_model_pinned_at_the_count_limit_is_a_503_naming_them(models, monkeypatch) -> None:
    monkeypatch.setenv("OLLAMA_MAX_LOADED_MODELS", "2")

    async def scenario() -> tuple[BaseException, list[str]]:
        runners = Runners(FakeEngine, pins=["a"])
        await use(runners, models["a"])
        await use(runners, models["b"], keep_alive=-1)
        with pytest.raises(PinnedMemory) as refused:
            await runners.acquire(models["c"], {}, 60)
        left = loaded(runners)
        await runners.close()
        return refused.value, left

    refused, left = run(scenario())
    assert str(refused) == 'cannot load "c:latest": memory is held by pinned models a:latest, b:latest'
    assert isinstance(refused, QueueFull)  # the API answers 503, as for a busy server
    assert left == ["a", "b"]


def test_short_of_memory_pinned_models_are_not_evicted_but_others_are(models, monkeypatch) -> None:
    monkeypatch.setattr(runners_module, "available_memory", lambda: 1)  # every load is short

    async def scenario() -> tuple[list[str], str, list[str]]:
        runners = Runners(FakeEngine, pins=["a"])
        await use(runners, models["a"])  # nothing to evict: loaded anyway, as before
        with pytest.raises(PinnedMemory) as refused:
            await runners.acquire(models["b"], {}, 60)
        first = loaded(runners)
        await runners.close()
        unpinned = Runners(FakeEngine, pins=[])
        await use(unpinned, models["a"])
        await use(unpinned, models["b"])  # an unpinned model is evicted for it, as before
        second = loaded(unpinned)
        await unpinned.close()
        return first, str(refused.value), second

    first, message, second = run(scenario())
    assert first == ["a"] and message == 'cannot load "b:latest": memory is held by pinned models a:latest'
    assert second == ["b"]


def test_a_busy_unpinned_model_is_waited_for_not_refused(models, monkeypatch) -> None:
    monkeypatch.setenv("OLLAMA_MAX_LOADED_MODELS", "2")

    async def scenario() -> list[str]:
        runners = Runners(FakeEngine, pins=["a"])
        await use(runners, models["a"])
        busy = await runners.acquire(models["b"], {}, 60)
        waiting = asyncio.create_task(runners.acquire(models["c"], {}, 60))
        await asyncio.sleep(0)
        assert not waiting.done()
        runners.release(busy)  # b goes idle: evicted for c, a stays
        runners.release(await waiting)
        result = loaded(runners)
        await runners.close()
        return result

    assert run(scenario()) == ["a", "c"]


def test_keep_alive_expiry_unloads_an_unpinned_model_and_not_a_pinned_one(models) -> None:
    async def scenario() -> list[str]:
        runners = Runners(FakeEngine, pins=["a"])
        await use(runners, models["a"], keep_alive=0)
        await use(runners, models["b"], keep_alive=0)
        await settle(runners)
        result = loaded(runners)
        await runners.close()
        return result

    assert run(scenario()) == ["a"]


def test_pinned_models_load_at_start_up_and_a_missing_one_is_left_for_its_first_use(models, store) -> None:
    async def scenario() -> tuple[list[str], bool]:
        runners = Runners(FakeEngine, pins=["a", "later"])
        runners.load_pinned(store)
        assert runners._preload is not None
        await runners._preload
        at_start = loaded(runners)
        pinned = all(r.pinned for r in runners.ps())
        await runners.close()
        return at_start, pinned

    at_start, pinned = run(scenario())
    assert at_start == ["a"] and pinned


def test_on_a_gpu_a_pinned_models_vram_is_kept_and_the_newcomer_gets_the_layers_that_fit(
    models, monkeypatch
) -> None:
    from llamita.server.runtime.memory import GPU_RESERVE

    from .test_runners import FakeGPU, full_offload

    vram, every_layer = full_offload(models, monkeypatch)
    gpu = FakeGPU(monkeypatch, GPU_RESERVE + vram + vram // 2)  # one fits whole, not two

    async def scenario():
        runners = gpu.attach(Runners(FakeEngine, pins=["a"]))
        a = await runners.acquire(models["a"], {}, None)
        runners.release(a)
        b = await runners.acquire(models["b"], {}, None)  # would have evicted a, unpinned
        runners.release(b)
        left = loaded(runners)
        await runners.close()
        return a, b, left

    a, b, left = run(scenario())
    assert left == ["a", "b"] and a.gpu_layers == every_layer
    assert 0 <= b.gpu_layers < every_layer
