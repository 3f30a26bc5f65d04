"""Context knobs on the real SmolLM2 GGUF: quantized KV caches with flash attention, the f16
fallback without it, and per-sequence KV (each sequence its own ``n_ctx_seq`` cells, prefix
copies as whole-sequence copies)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import llama_cpp as ll
import pytest
from enginekit import collect

from llamita.server.engine.core import Engine
from llamita.server.engine.llama import ContextOptions, LoadOptions
from llamita.server.engine.request import Done
from llamita.server.runtime.knobs import Knobs, context_options

pytestmark = pytest.mark.model

SMALL = ContextOptions(n_ctx=2 * 512, n_ctx_seq=512, n_batch=256, n_seq_max=4)


def engine_with(gguf: Path, **changes: object) -> Engine:
    return Engine(gguf, LoadOptions(), dataclasses.replace(SMALL, **changes))


def answer(engine: Engine, text: str, session: str | None = None) -> tuple[str, Done]:
    return asyncio.run(collect(engine, text, session, temperature=0, num_predict=16))


def state_size(engine: Engine) -> int:
    """Bytes of the context's state (mostly the KV cells in use), read on the engine thread."""
    return int(engine.call(lambda: ll.llama_state_get_size(engine.ctx.ptr)).result())


@pytest.fixture(scope="module")
def f16(smollm2_gguf: Path) -> Iterator[Engine]:
    e = engine_with(smollm2_gguf, flash_attn=True)
    yield e
    e.close()


@pytest.mark.parametrize("cache_type", ["q8_0", "q4_0"])
def test_a_quantized_kv_cache_with_flash_attention_generates(
    smollm2_gguf: Path, f16: Engine, cache_type: str
) -> None:
    engine = engine_with(smollm2_gguf, flash_attn=True, cache_type=cache_type)
    try:
        assert engine.ctx.kv_type == cache_type
        text, done = answer(engine, "What is the capital of France?")
        reference, _ = answer(f16, "What is the capital of France?")
        assert text.strip() and done.eval_count > 0
        # The same tokens in the cache take less room than f16's: the type reached llama.cpp.
        assert state_size(engine) < state_size(f16)
        assert reference.strip()
    finally:
        engine.close()


def test_a_quantized_kv_cache_without_flash_attention_falls_back_to_f16(
    smollm2_gguf: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="llamita.llama"):
        engine = engine_with(smollm2_gguf, flash_attn=False, cache_type="q8_0")
    try:
        assert engine.ctx.kv_type == "f16"
        assert "needs flash attention" in caplog.text
        text, _ = answer(engine, "Say hi.")
        assert text.strip()
    finally:
        engine.close()


@pytest.fixture(scope="module")
def per_sequence(smollm2_gguf: Path) -> Iterator[Engine]:
    options = context_options(
        Knobs(parallel=2, kv_unified=False), num_ctx=512, num_batch=256, n_seq_max=4, num_thread=0
    )
    e = Engine(smollm2_gguf, LoadOptions(), options)
    yield e
    e.close()


def test_per_sequence_kv_gives_every_sequence_its_context(per_sequence: Engine) -> None:
    assert not per_sequence.ctx.unified
    assert per_sequence.ctx.n_ctx == 4 * 512  # n_ctx_seq cells for each of the 4 sequences
    assert per_sequence.scheduler.max_running == 2  # num_parallel, not n_seq_max
    assert per_sequence.n_ctx == 512


def test_per_sequence_kv_serves_concurrent_requests_as_alone(per_sequence: Engine) -> None:
    questions = ["Name a prime number.", "What color is the sky?", "Say hi."]
    alone = [answer(per_sequence, q)[0] for q in questions]

    async def together() -> list[tuple[str, Done]]:
        return await asyncio.gather(
            *[collect(per_sequence, q, temperature=0, num_predict=16) for q in questions]
        )

    assert [text for text, _ in asyncio.run(together())] == alone
    assert all(alone)


def test_per_sequence_kv_copies_a_prefix_between_sequences(per_sequence: Engine) -> None:
    question = "Explain recursion in one sentence, please, for a beginner programmer who knows loops."
    first, done = answer(per_sequence, question, session="editor-a")
    # Another editor's request lands on a sequence of its own and copies editor-a's KV
    # (a whole-sequence copy in per-sequence caches): nothing is evaluated twice.
    second, again = answer(per_sequence, question, session="editor-b")
    assert again.prompt_cache_tokens == done.prompt_tokens - 1
    assert second == first


def test_num_parallel_reaches_the_unified_engine(smollm2_gguf: Path) -> None:
    options = context_options(Knobs(parallel=3), num_ctx=256, num_batch=256, n_seq_max=6, num_thread=0)
    engine = Engine(smollm2_gguf, LoadOptions(), options)
    try:
        assert engine.ctx.unified and engine.scheduler.max_running == 3
        assert engine.ctx.n_ctx == 3 * 256
    finally:
        engine.close()
