"""Rendering and tokenizing run in a worker thread, never on the event loop (review finding 10).

A long chat's render, tokenize and truncation take long enough to freeze every other stream
if they ran on the loop; these tests record the thread each of them ran on.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from fakeengine import FakeEngine, FakeEngines

from ggufgen import write_tiny_gguf
from llamita.server.model.create import import_gguf
from llamita.server.prompt import fit
from llamita.server.runtime.generate import Runtime
from llamita.server.runtime.metrics import Metrics
from llamita.server.runtime.requests import ChatRequest, EmbedRequest, GenerateRequest
from llamita.server.runtime.runners import Runners
from llamita.server.store.blobs import Store


@pytest.fixture
def runtime(store: Store, tmp_path: Path) -> Runtime:
    import_gguf(store, "tiny", write_tiny_gguf(tmp_path / "tiny.gguf"))
    runners = Runners(FakeEngines())
    return Runtime(store, runners, Metrics(runners))


@pytest.fixture
def threads(monkeypatch: pytest.MonkeyPatch) -> dict[str, set[int]]:
    """For each of render and tokenize, the ids of the threads it ran on."""
    seen: dict[str, set[int]] = {"render": set(), "tokenize": set()}

    def recording(name: str, function: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            seen[name].add(threading.get_ident())
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(fit, "render_prompt", recording("render", fit.render_prompt))
    monkeypatch.setattr(fit, "render_generate", recording("render", fit.render_generate))
    monkeypatch.setattr(FakeEngine, "tokenize", recording("tokenize", FakeEngine.tokenize))
    return seen


def run_on_loop(runtime: Runtime, call: Any) -> int:
    """Runs ``call(runtime)`` to the end on a fresh loop; the loop thread's id."""

    async def run() -> int:
        try:
            result = call(runtime)
            if hasattr(result, "__aiter__"):
                [chunk async for chunk in result]
            else:
                await result
            return threading.get_ident()
        finally:
            await runtime.runners.close()

    return asyncio.run(run())


LONG_CHAT = [{"role": ("user", "assistant")[i % 2], "content": f"turn {i} " + "x" * 100} for i in range(40)]

CASES = {
    "generate": lambda r: r.generate(GenerateRequest(model="tiny", prompt="hello")),
    "generate with context": lambda r: r.generate(
        GenerateRequest(model="tiny", prompt="hi", context=[1, 70, 71])
    ),
    "raw generate": lambda r: r.generate(GenerateRequest(model="tiny", prompt="hello", raw=True)),
    "truncated chat": lambda r: r.chat(
        ChatRequest(model="tiny", messages=LONG_CHAT, options={"num_ctx": 300})
    ),
    "rendered only": lambda r: r.chat(ChatRequest(model="tiny", messages=LONG_CHAT, debug_render_only=True)),
    "embed": lambda r: r.embed(EmbedRequest(model="tiny", inputs=["a", "b" * 50])),
}


@pytest.mark.parametrize("case", CASES)
def test_render_and_tokenize_run_off_the_event_loop(
    runtime: Runtime, threads: dict[str, set[int]], case: str
) -> None:
    loop_thread = run_on_loop(runtime, CASES[case])
    ran = threads["render"] | threads["tokenize"]
    assert ran and loop_thread not in ran
    assert bool(threads["render"]) == (case not in ("embed", "raw generate"))
    assert bool(threads["tokenize"]) == (case != "rendered only")
