"""An idle engine hands its OpenMP team back, and a busy one gets a new team with the same output.

The team's threads are found by name: the engine thread names itself, and the threads libgomp
starts from it inherit that name (Linux).  No timing is asserted: the release is waited for with
a generous bound, and the engine that must keep its team is told to wait an hour first.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from enginekit import collect

from llamita.server.engine.core import Engine
from llamita.server.engine.llama import ContextOptions, LoadOptions
from llamita.server.engine.openmp import _pause, name_thread, release_team

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux threads")


def threads_named(name: str) -> int:
    """Threads of this process with OS name ``name``."""
    count = 0
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):  # the thread ended meanwhile
            count += (task / "comm").read_text().strip() == name
    return count


def new_engine(gguf: Path, idle_release: float) -> Engine:
    options = ContextOptions(n_ctx=1024, n_ctx_seq=512, n_batch=128, n_seq_max=2, n_threads=2)
    return Engine(gguf, LoadOptions(), options, idle_release=idle_release)


@pytest.fixture(scope="module")
def openmp_build(smollm2_gguf: Path) -> None:
    """llama-cpp-python's Linux build runs ggml on OpenMP: importing the engine loaded libgomp."""
    if _pause() is None:
        pytest.skip("this llama.cpp build does not use libgomp")


@pytest.fixture
def keeping(smollm2_gguf: Path, openmp_build: None) -> Iterator[Engine]:
    engine = new_engine(smollm2_gguf, idle_release=3600)
    yield engine
    engine.close()


@pytest.fixture
def releasing(smollm2_gguf: Path, openmp_build: None) -> Iterator[Engine]:
    engine = new_engine(smollm2_gguf, idle_release=0.01)
    yield engine
    engine.close()


def wait_for_threads(name: str, count: int, bound: float = 120) -> int:
    deadline = time.monotonic() + bound
    while (seen := threads_named(name)) != count and time.monotonic() < deadline:
        time.sleep(0.02)
    return seen


def test_a_busy_engine_keeps_its_team_of_num_thread_threads(keeping: Engine) -> None:
    assert wait_for_threads(keeping.thread_name, 1) == 1  # the engine thread (once it named itself)
    asyncio.run(collect(keeping, "Say hi.", temperature=0, num_predict=4))
    assert threads_named(keeping.thread_name) == 2  # and libgomp's second thread, docked


def test_an_idle_engine_hands_its_team_back_and_answers_the_same_after(releasing: Engine) -> None:
    first, _ = asyncio.run(collect(releasing, "Name a colour.", temperature=0, num_predict=12))
    assert wait_for_threads(releasing.thread_name, 1) == 1
    again, done = asyncio.run(collect(releasing, "Name a colour.", temperature=0, num_predict=12))
    assert again == first and not done.error
    assert wait_for_threads(releasing.thread_name, 1) == 1


def test_an_idle_engine_does_not_hold_threads_beside_a_busy_one(keeping: Engine, releasing: Engine) -> None:
    """The case the release exists for: a second loaded model that is not in use."""
    asyncio.run(collect(releasing, "Count to three.", temperature=0, num_predict=4))
    asyncio.run(collect(keeping, "Count to three.", temperature=0, num_predict=4))
    assert wait_for_threads(releasing.thread_name, 1) == 1
    assert threads_named(keeping.thread_name) == 2


def test_a_bystander_answers_the_same_while_the_other_engine_releases(
    keeping: Engine, releasing: Engine
) -> None:
    """The busy engine's greedy text does not change when the idle one's team goes away beside it."""
    solo, _ = asyncio.run(collect(keeping, "Write a haiku about rain.", temperature=0, num_predict=48))

    async def side_by_side() -> str:
        beside = asyncio.ensure_future(
            collect(keeping, "Write a haiku about rain.", temperature=0, num_predict=48)
        )
        await collect(releasing, "Say hi.", temperature=0, num_predict=2)  # then it goes idle and releases
        text, done = await beside
        assert not done.error
        return text

    assert asyncio.run(side_by_side()) == solo
    assert wait_for_threads(releasing.thread_name, 1) == 1


def test_release_without_a_team_is_harmless(openmp_build: None) -> None:
    assert release_team()  # this thread never started one


def test_a_named_thread_shows_its_name() -> None:
    seen: list[int] = []

    def named() -> None:
        name_thread("llamita-test-nm")
        seen.append(threads_named("llamita-test-nm"))

    thread = threading.Thread(target=named)
    thread.start()
    thread.join()
    assert seen == [1]
