"""The engine on the real SmolLM2 GGUF: batching must not change results, reuse must work."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from enginekit import CHAT, collect

from llamita.server.engine.core import Engine
from llamita.server.engine.llama import ContextOptions, LoadOptions
from llamita.server.engine.request import Done, FinishReason, SamplingParams, Token

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def engine(smollm2_gguf: Path) -> Iterator[Engine]:
    e = Engine(
        smollm2_gguf, LoadOptions(), ContextOptions(n_ctx=4 * 1024, n_ctx_seq=1024, n_batch=256, n_seq_max=4)
    )
    yield e
    e.close()


def run(coro):
    return asyncio.run(coro)


def test_greedy_is_deterministic_and_batching_changes_nothing(engine: Engine) -> None:
    questions = [
        "What is the capital of France?",
        "Name a prime number.",
        "Say hi.",
        "What color is the sky?",
    ]
    alone = [run(collect(engine, q, temperature=0, num_predict=24))[0] for q in questions]

    async def together():
        return await asyncio.gather(*[collect(engine, q, temperature=0, num_predict=24) for q in questions])

    assert [text for text, _ in run(together())] == alone
    assert all(alone)


def test_seed_reproduces_sampling(engine: Engine) -> None:
    a = run(collect(engine, "Tell me a word.", temperature=1.0, seed=42, num_predict=16))[0]
    b = run(collect(engine, "Tell me a word.", temperature=1.0, seed=42, num_predict=16))[0]
    assert a == b


def test_prefix_reuse_reports_cached_tokens(engine: Engine) -> None:
    prompt = "Explain recursion in one sentence, please, for a beginner programmer."
    _, first = run(collect(engine, prompt, session="reuse", temperature=0, num_predict=4))
    _, second = run(collect(engine, prompt + " Thanks!", session="reuse", temperature=0, num_predict=4))
    assert second.prompt_cache_tokens >= first.prompt_tokens - 8
    assert second.prompt_eval_count <= second.prompt_tokens - second.prompt_cache_tokens
    assert second.prompt_eval_count < first.prompt_eval_count


def test_num_predict_and_stop(engine: Engine) -> None:
    _, done = run(collect(engine, "Count from 1 to 20 separated by commas.", temperature=0, num_predict=8))
    assert done.reason == FinishReason.LENGTH and done.eval_count == 8 and done.stop_sequence == ""
    full, _ = run(collect(engine, "Count from 1 to 20 separated by commas.", temperature=0, num_predict=40))
    cut = next(i for i in range(3, len(full) - 3) if full.index(full[i : i + 3]) == i)
    stopped, done = run(
        collect(
            engine,
            "Count from 1 to 20 separated by commas.",
            temperature=0,
            num_predict=40,
            stop=[full[cut : cut + 3]],
        )
    )
    assert done.reason == FinishReason.STOP
    assert stopped == full[:cut]  # the stop string itself is never echoed
    assert done.stop_sequence == full[cut : cut + 3]  # and the Done names it


def test_abort_frees_the_sequence_within_a_step(engine: Engine) -> None:
    async def scenario() -> None:
        events = engine.generate(
            engine.tokenize(CHAT.format("Write a long story.")),
            SamplingParams(temperature=0, num_predict=500),
        )
        async for _ in events:
            break
        await events.aclose()
        # The engine thread handles its inbox in order: by the time this call runs, the
        # abort that ``aclose`` sent has been handled (no waiting on time).
        running = await asyncio.wrap_future(engine.call(lambda: list(engine.scheduler.running)))
        assert running == []

    before = engine.stats().aborted
    run(scenario())
    assert engine.stats().aborted == before + 1


def test_same_session_supersedes(engine: Engine) -> None:
    async def scenario() -> tuple[Done, str, Done]:
        first = engine.generate(
            engine.tokenize(CHAT.format("Write a long story about a cat.")),
            SamplingParams(temperature=0, num_predict=400),
            "editor-1",
        )
        first_events = []

        async def drain() -> None:
            async for event in first:
                first_events.append(event)

        task = asyncio.create_task(drain())
        await asyncio.sleep(0.2)
        text, second = await collect(engine, "Say hi.", session="editor-1", temperature=0, num_predict=8)
        await task
        return first_events[-1], text, second

    first_done, text, second_done = run(scenario())
    assert first_done.reason == FinishReason.ABORTED and first_done.eval_count < 400
    assert first_done.error == "request superseded by a newer request from the same session"
    assert second_done.reason in (FinishReason.STOP, FinishReason.LENGTH) and text


def test_json_grammar(engine: Engine) -> None:
    import json

    from llama_cpp.llama_grammar import JSON_GBNF

    text, done = run(
        collect(
            engine, "Give me a JSON object with a name.", temperature=0, num_predict=64, grammar=JSON_GBNF
        )
    )
    if done.reason == FinishReason.STOP:
        assert isinstance(json.loads(text), dict)
    else:
        assert text.lstrip().startswith("{")


def test_embeddings_are_deterministic(engine: Engine) -> None:
    a, b = run(engine.embed([engine.tokenize("hello world"), engine.tokenize("hello world")]))
    assert len(a) == engine.model.n_embd and a == b


def test_fim_markers_tokenize_to_fim_ids(tmp_path: Path) -> None:
    from ggufgen import write_tiny_gguf

    path = write_tiny_gguf(tmp_path / "fim.gguf", fim=True)
    e = Engine(path, LoadOptions(), ContextOptions(n_ctx=512, n_ctx_seq=256, n_batch=64, n_seq_max=2))
    try:
        pre, suf, mid = e.model.fim_ids()
        assert min(pre, suf, mid) >= 0
        tokens = e.model.tokenize("<|fim_prefix|>def f(<|fim_suffix|>)<|fim_middle|>", add_bos=False)
        assert tokens[0] == pre and suf in tokens and tokens[-1] == mid
        _, done = run(collect_raw(e, tokens))
        assert done.eval_count > 0
    finally:
        e.close()


async def collect_raw(engine: Engine, tokens: list[int]) -> tuple[str, Done]:
    out, done = "", None
    async for event in engine.generate(tokens, SamplingParams(temperature=0, num_predict=4)):
        if isinstance(event, Token):
            out += event.text
        else:
            done = event
    assert done is not None
    return out, done


def test_more_requests_than_cells_for_them_wait_instead_of_failing(smollm2_gguf: Path) -> None:
    """Two full-length sequences fit in the cells; the two spare sequences must not run at once too."""
    options = ContextOptions(n_ctx=512, n_ctx_seq=256, n_batch=128, n_seq_max=4)
    e = Engine(smollm2_gguf, LoadOptions(), options)
    prompts = [e.model.tokenize(" ".join(f"w{i}x{j}" for j in range(70)))[:200] for i in range(4)]

    async def generate(tokens: list[int]) -> Done:
        done = None
        async for event in e.generate(tokens, SamplingParams(temperature=0, num_predict=40)):
            if isinstance(event, Done):
                done = event
        assert done is not None
        return done

    async def together() -> list[Done]:
        return await asyncio.gather(*(generate(p) for p in prompts))

    try:
        results = run(together())
    finally:
        e.close()
    assert [d.reason for d in results] == [FinishReason.LENGTH] * 4, [d.error for d in results]
    assert all(d.eval_count == 40 for d in results)


def test_a_prompt_evaluated_alone_gets_long_steps_and_yields_once_others_run(engine: Engine) -> None:
    """Small prefill chunks waste a CPU's matmul throughput, so a lone prompt gets the long
    ``solo_step_target``; beside a decoder, or with another prompt, or while an editor is
    typing, the short targets apply."""
    import time
    from types import SimpleNamespace

    from llamita.server.engine.request import RequestStatus

    def step_times() -> dict[str, float | None]:
        scheduler, pacing = engine.scheduler, engine.pacing
        saved = (scheduler.running, pacing.sec_per_token, pacing.last_interactive)
        prefill = SimpleNamespace(status=RequestStatus.PREFILLING)
        decode = SimpleNamespace(status=RequestStatus.DECODING)
        pacing.sec_per_token = 0.001
        try:
            out = {}
            for name, running in {
                "alone": [prefill],
                "two": [prefill, prefill],
                "decode": [prefill, decode],
            }.items():
                scheduler.running = running
                out[name] = engine._step_time()
            scheduler.running = [prefill]
            pacing.last_interactive = time.monotonic()
            out["typing"] = engine._step_time()
            return out
        finally:
            scheduler.running, pacing.sec_per_token, pacing.last_interactive = saved

    got = engine.call(step_times).result(timeout=600)  # between steps, on the engine thread
    pacing = engine.pacing
    assert got == {
        "alone": pacing.solo_step_target,
        "two": pacing.step_target,
        "decode": pacing.step_target * pacing.decode_share,
        "typing": pacing.step_target,
    }


def test_a_long_step_stops_for_a_keystroke_and_loses_nothing(engine: Engine) -> None:
    """A prompt alone gets long steps; a keystroke arriving during one stops it (llama.cpp's
    abort callback), and the stopped step is simply evaluated again: same greedy answer."""
    text = "Summarise this: " + "the quick brown fox jumps over the lazy dog. " * 50

    def forget_idle_kv() -> None:
        for slot in engine.scheduler.slots.slots:
            if not slot.busy:
                engine.scheduler.slots.evict(slot, engine.ctx)

    expected, _ = run(collect(engine, text, temperature=0, num_predict=12))
    engine.call(forget_idle_kv).result(timeout=600)
    real, fired = engine.ctx.decode, []

    def decode(preempt=None):
        if preempt is not None and not fired:
            fired.append(len(engine.ctx.batch))
            engine._urgent = True  # a keystroke arrives as the long step starts
        return real(preempt)

    before = engine._decoder.preempted
    engine.ctx.decode = decode
    try:
        got, done = run(collect(engine, text, temperature=0, num_predict=12))
    finally:
        del engine.ctx.decode
    assert fired, "the lone prompt never got a long (stoppable) step"
    assert engine._decoder.preempted == before + 1
    assert got == expected and done.prompt_cache_tokens == 0
