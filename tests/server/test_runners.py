"""Model-level scheduling with a fake engine factory (no llama.cpp): keep-alive, reuse, eviction."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest

from llamita.server.model import load_model
from llamita.server.names import require_name
from llamita.server.runners import Runners
from llamita.server.store import Store


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
    from llamita.server.create import import_gguf

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
