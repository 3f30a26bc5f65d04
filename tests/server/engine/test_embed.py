"""The embedding context: sized to the inputs, freed when idle, and never a stall for generation."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from ggufgen import write_tiny_gguf
from llamita.server.engine import EmbeddingError, Engine
from llamita.server.engine import embed as embed_module
from llamita.server.engine.embed import EMBED_BATCH_TOKENS, EMBED_MIN_TOKENS, EMBED_SEQS, groups
from llamita.server.engine.llama import ContextOptions, LoadOptions
from llamita.server.engine.request import SamplingParams, Token

pytestmark = pytest.mark.model


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    path = write_tiny_gguf(tmp_path / "tiny.gguf")
    e = Engine(path, LoadOptions(), ContextOptions(n_ctx=1024, n_ctx_seq=512, n_batch=256, n_seq_max=4))
    yield e
    e.close()


def words(n: int, seed: int = 0) -> str:
    """About 4n tokens of the tiny vocabulary."""
    vocab = ["def", "return", "class", "hello", "world", "the", "and", "for", "print", "self"]
    return " ".join(vocab[(i * 7 + seed) % len(vocab)] for i in range(n))


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_groups_are_bounded() -> None:
    inputs = [[1] * 300] * 20 + [[2] * 3000] + [[3] * 5] * (EMBED_SEQS + 1)
    out = list(groups(inputs))
    assert [t for g in out for t in g] == inputs  # order kept, nothing lost
    for group in out:
        assert len(group) <= EMBED_SEQS
        assert len(group) == 1 or sum(map(len, group)) <= EMBED_BATCH_TOKENS


def test_batched_inputs_equal_one_at_a_time(engine: Engine) -> None:
    """Several inputs share one decode (one sequence each); each vector is its own."""
    texts = [words(5), words(30, 1), "", words(8, 2), words(100, 3), words(2, 4)]  # ~580 tokens
    tokens = [engine.tokenize(t) if t else [] for t in texts]
    together = asyncio.run(engine.embed(tokens))
    alone = [asyncio.run(engine.embed([t]))[0] for t in tokens]
    assert together[2] == [] and alone[2] == []
    for a, b in zip(together, alone, strict=True):
        if a:
            assert len(a) == engine.model.n_embd_out
            assert cosine(a, b) > 0.9999


def test_context_grows_for_long_batches_and_is_freed_when_idle(engine: Engine) -> None:
    embedder = engine.embedder
    assert embedder.n_ctx == 0  # nothing until the first embedding
    asyncio.run(engine.embed([engine.tokenize(words(10))]))
    assert EMBED_MIN_TOKENS <= embedder.n_ctx < 1024  # sized to the input, not to n_ctx_train
    long = [engine.tokenize(words(110, s)) for s in range(3)]  # > 1,300 tokens in one group
    asyncio.run(engine.embed(long))
    assert embedder.n_ctx >= sum(map(len, long))
    embedder.idle_seconds = 0
    engine.call(embedder.release_if_idle).result(timeout=60)
    assert embedder.n_ctx == 0


def test_an_input_over_the_context_is_refused(engine: Engine) -> None:
    with pytest.raises(EmbeddingError, match="exceeds the context length"):
        asyncio.run(engine.embed([[5] * (engine.n_ctx_seq + 1)]))


def test_generation_steps_run_between_embedding_groups(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An indexing batch is embedded group by group, each group one engine call, so a running
    generation gets a step between two groups instead of waiting for the whole batch."""
    log: list[str] = []
    run, sample = engine.embedder.run, engine._sample

    def logged_run(group: list[list[int]]) -> list[list[float]]:
        # "E": a group while the generation runs (it must have stepped since the last group)
        log.append("E" if engine.scheduler.running else "e")
        return run(group)

    monkeypatch.setattr(engine.embedder, "run", logged_run)
    monkeypatch.setattr(engine, "_sample", lambda *a: (log.append("s"), sample(*a))[1])
    monkeypatch.setattr(embed_module, "EMBED_SEQS", 1)  # one input per group: many groups
    inputs = [engine.tokenize(words(40, s)) for s in range(4)]

    async def scenario() -> None:
        params = SamplingParams(temperature=0, num_predict=-1, ignore_eos=True)
        stream = engine.generate(engine.tokenize(words(8)), params)
        async for event in stream:  # the generation is running once its first token arrives
            assert isinstance(event, Token)
            break
        await engine.embed(inputs)
        await stream.aclose()

    asyncio.run(scenario())
    groups_seen = [i for i, x in enumerate(log) if x in "Ee"]
    assert len(groups_seen) == len(inputs)  # one engine call per group, not one for the batch
    assert log[groups_seen[0]] == "E"
    for before, after in itertools.pairwise(groups_seen):
        if log[after] == "E":  # still generating: it must have had a step in between
            assert "s" in log[before + 1 : after], log
