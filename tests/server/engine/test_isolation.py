"""One request can never harm another (issue 11), on the real SmolLM2 GGUF.

Each test runs a greedy *bystander* next to a request that brings trouble (options, tokens,
a failing decode, a crash) and checks that the bystander's output is its solo output.
Requests are put into the same batch deterministically: the engine thread is held on a
gate (``engine.call``) while they are submitted, or the troublemaker is submitted from the
bystander's own event callback, which runs on the engine thread between two steps.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from llamita.server.engine.core import Engine, EngineFailed
from llamita.server.engine.llama import ContextOptions, LoadOptions
from llamita.server.engine.request import CANCELED, Done, Event, FinishReason, Request, SamplingParams, Token

pytestmark = pytest.mark.model

CHAT = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
QUESTION = "Count from 1 to 20 separated by commas."
GREEDY = {"temperature": 0, "num_predict": 24}
FINISHED = (FinishReason.STOP, FinishReason.LENGTH)


@pytest.fixture(scope="module")
def engine(smollm2_gguf: Path) -> Iterator[Engine]:
    options = ContextOptions(n_ctx=8 * 256, n_ctx_seq=256, n_batch=256, n_seq_max=8)
    e = Engine(smollm2_gguf, LoadOptions(), options)
    yield e
    e.close()


class Probe:
    """A request submitted straight to the engine (``generate`` minus its checks), with its events."""

    def __init__(
        self,
        engine: Engine,
        prompt: list[int],
        session: str | None = None,
        on_event: Callable[[Request, Event], None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,  # from the engine thread: the test's loop
        **params: object,
    ) -> None:
        loop = loop or asyncio.get_running_loop()
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.text = ""

        def emit(event: Event) -> None:  # on the engine thread
            if on_event is not None:
                on_event(self.request, event)
            loop.call_soon_threadsafe(self.events.put_nowait, event)

        self.request = Request(list(prompt), SamplingParams(**params), emit, session)
        engine.submit(self.request)

    async def next(self) -> Event:
        # The timeout only turns a hang (the old engine's) into a failure.
        event = await asyncio.wait_for(self.events.get(), 300)
        if isinstance(event, Token):
            self.text += event.text
        return event

    async def first_token(self) -> None:
        while not isinstance(event := await self.next(), Token):
            assert not isinstance(event, Done), event

    async def result(self) -> tuple[str, Done]:
        while not isinstance(event := await self.next(), Done):
            pass
        return self.text, event


@contextmanager
def held(engine: Engine) -> Iterator[None]:
    """Keep the engine thread between steps while the block submits, so they share a batch."""
    gate = threading.Event()
    engine.call(gate.wait)
    try:
        yield
    finally:
        gate.set()


def chat(engine: Engine, text: str = QUESTION) -> list[int]:
    return engine.tokenize(CHAT.format(text))


def solo(engine: Engine, prompt: list[int], **params: object) -> str:
    async def one() -> str:
        text, done = await Probe(engine, prompt, **params).result()
        assert done.reason in FINISHED, done.error
        return text

    return asyncio.run(one())


def test_penalties_and_every_sampler_next_to_a_greedy_bystander(engine: Engine) -> None:
    """Penalties used to raise a TypeError (wrong arity) that failed the whole batch."""
    prompt = chat(engine)
    alone = solo(engine, prompt, **GREEDY)
    others = [
        {"repeat_penalty": 1.1},
        {"frequency_penalty": 0.5, "presence_penalty": 0.5},
        {"repeat_penalty": 1.5, "repeat_last_n": 0},  # 0 = off: greedy output unchanged
        {"repeat_penalty": 1.5, "repeat_last_n": -1},  # -1 = the context
        {"temperature": 0.8, "mirostat": 1, "seed": 3},
        {"temperature": 0.8, "mirostat": 2, "seed": 4},
        {"temperature": 0.8, "top_k": 10, "top_p": 0.5, "min_p": 0.05, "typical_p": 0.5, "seed": 5},
    ]

    async def batch() -> list[tuple[str, Done]]:
        with held(engine):
            probes = [Probe(engine, prompt, **GREEDY)]
            probes += [Probe(engine, prompt, **{**GREEDY, **o}) for o in others]
        return [await p.result() for p in probes]

    results = asyncio.run(batch())
    assert [d.error for _, d in results] == [""] * 8
    assert all(d.reason in FINISHED for _, d in results)
    assert results[0][0] == alone
    assert results[3][0] == alone  # repeat_last_n 0
    assert results[4][0] != alone  # a strong penalty over the whole context does change the answer


def test_a_failing_decode_fails_only_its_request_and_keeps_the_others_kv(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token id outside the vocabulary makes llama_decode reject the whole batch (rc -1)."""
    prompt = chat(engine, "Name three colors.")
    alone = solo(engine, prompt, **GREEDY)
    monkeypatch.setattr(engine, "validate", lambda prompt: None, raising=False)  # on to llama_decode
    bad: list[Probe] = []

    async def scenario() -> tuple[tuple[str, Done], tuple[str, Done]]:
        loop = asyncio.get_running_loop()

        def after_first_token(request: Request, event: Event) -> None:
            if not bad and isinstance(event, Token):  # the bystander is decoding: join its batch
                bad.append(Probe(engine, [*chat(engine, "Hi"), engine.n_vocab], loop=loop, **GREEDY))

        bystander = Probe(engine, prompt, session="bystander", on_event=after_first_token, **GREEDY)
        await bystander.first_token()  # the bad request was submitted before this event was
        first = await bystander.result()
        return first, await bad[0].result()

    (text, done), (_, failed) = asyncio.run(scenario())
    assert failed.reason == FinishReason.ERROR and "llama_decode failed" in failed.error
    assert done.reason in FINISHED and text == alone and text
    monkeypatch.undo()

    async def again() -> tuple[str, Done]:
        return await Probe(engine, prompt, session="bystander", **GREEDY).result()

    text, done = asyncio.run(again())  # its KV was kept: only the last prompt token is evaluated
    assert text == alone and done.prompt_cache_tokens == len(prompt) - 1


def test_no_room_in_the_kv_retries_with_less_and_fails_no_one(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rc=1 (llama.cpp restored the KV): evict idle KV, shrink the prompt part, split the rest."""
    prompts = [chat(engine, q) for q in ("Say hi.", "Name a prime number.")]
    alone = [solo(engine, p, **GREEDY) for p in prompts]
    decode, refused = engine.ctx.decode, []

    def no_room_for_two(
        preempt: object = None,
    ) -> int:  # every batch of two sequences: idle KV goes, then work is split
        batch = engine.ctx.batch
        if len({batch.raw.seq_id[i][0] for i in range(len(batch))}) > 1:
            refused.append(len(batch))
            return 1
        return decode(preempt)

    async def together() -> list[tuple[str, Done]]:
        with held(engine):
            probes = [Probe(engine, p, **GREEDY) for p in prompts]
            monkeypatch.setattr(engine.ctx, "decode", no_room_for_two)
        return [await p.result() for p in probes]

    results = asyncio.run(together())
    assert refused and [d.error for _, d in results] == ["", ""]
    assert [t for t, _ in results] == alone


def test_empty_and_out_of_vocabulary_prompts_are_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="empty"):
        engine.generate([], SamplingParams())
    with pytest.raises(ValueError, match="invalid token id"):
        engine.generate([1, engine.n_vocab], SamplingParams())
    with pytest.raises(ValueError, match="invalid token id"):
        engine.generate([-1], SamplingParams())
    prompt = chat(engine, "What color is the sky?")
    alone = solo(engine, prompt, **GREEDY)

    async def next_to_a_bystander() -> list[tuple[str, Done]]:
        with held(engine):  # straight to the engine: it checks again
            probes = [Probe(engine, prompt, **GREEDY), Probe(engine, [], **GREEDY)]
            probes.append(Probe(engine, [engine.n_vocab + 5], **GREEDY))
        return [await p.result() for p in probes]

    (text, done), (_, empty), (_, bad) = asyncio.run(next_to_a_bystander())
    assert text == alone and done.reason in FINISHED
    assert empty.reason == bad.reason == FinishReason.ERROR
    assert "empty" in empty.error and "invalid token id" in bad.error


def test_a_request_whose_sampler_cannot_be_built_fails_alone(engine: Engine) -> None:
    prompt = chat(engine, "Say hi.")
    alone = solo(engine, prompt, **GREEDY)

    async def scenario() -> list[tuple[str, Done]]:
        with held(engine):
            probes = [Probe(engine, prompt, **GREEDY)]
            probes.append(Probe(engine, prompt, temperature=0.7, mirostat=1, mirostat_tau="x"))
            probes.append(Probe(engine, prompt, **GREEDY, stop=[5]))  # fails in stop handling
        return [await p.result() for p in probes]

    (text, done), (_, broken), (_, stops) = asyncio.run(scenario())
    assert text == alone and done.reason in FINISHED
    assert broken.reason == stops.reason == FinishReason.ERROR and broken.error and stops.error


def test_stop_string_and_what_follows_are_not_in_the_context(engine: Engine) -> None:
    prompt = chat(engine)
    full = solo(engine, prompt, temperature=0, num_predict=40)
    cut = next(i for i in range(3, len(full) - 3) if full.index(full[i : i + 3]) == i)

    async def stopped() -> tuple[str, Done]:
        return await Probe(engine, prompt, temperature=0, num_predict=40, stop=[full[cut : cut + 3]]).result()

    text, done = asyncio.run(stopped())
    assert done.reason == FinishReason.STOP and text == full[:cut]
    assert done.context[: len(prompt)] == prompt
    assert engine.model.detokenize(done.context[len(prompt) :]) == text


def test_cancel_and_supersede_say_which(engine: Engine) -> None:
    prompt = chat(engine, "Write a long story about a cat.")

    async def scenario() -> tuple[Done, Done, Done]:
        with held(engine):
            canceled = Probe(engine, prompt, temperature=0, num_predict=400)
            old = Probe(engine, prompt, session="editor", temperature=0, num_predict=400)
            engine.abort(canceled.request.id)
            new = Probe(engine, prompt, session="editor", **GREEDY)
        return (await canceled.result())[1], (await old.result())[1], (await new.result())[1]

    canceled, old, new = asyncio.run(scenario())
    assert canceled.reason == old.reason == FinishReason.ABORTED
    assert canceled.error == CANCELED == "request canceled"
    assert old.error == "request superseded by a newer request from the same session"
    assert new.reason in FINISHED and not new.error


def test_num_batch_below_the_sequence_count(smollm2_gguf: Path) -> None:
    """llama.cpp aborts the process when n_batch < n_seq_max: the context clamps it."""
    e = Engine(smollm2_gguf, LoadOptions(), ContextOptions(n_ctx=512, n_ctx_seq=128, n_batch=2, n_seq_max=4))

    async def four() -> list[tuple[str, Done]]:
        with held(e):
            probes = [Probe(e, chat(e, q), temperature=0, num_predict=12) for q in ("a", "b", "c", "d")]
        return [await p.result() for p in probes]

    try:
        assert e.ctx.n_batch == e.scheduler.n_batch == 4
        results = asyncio.run(four())
    finally:
        e.close()
    assert all(d.reason == FinishReason.LENGTH and d.eval_count == 12 for _, d in results), results


def test_an_engine_crash_fails_every_request_fast_and_marks_it_unhealthy(
    smollm2_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One running request at a time: the second waits, and must be answered too.
    e = Engine(smollm2_gguf, LoadOptions(), ContextOptions(n_ctx=256, n_ctx_seq=256, n_batch=64, n_seq_max=2))

    def boom(*args: object) -> None:
        raise RuntimeError("boom")

    async def scenario() -> list[Done]:
        with held(e):
            probes = [Probe(e, chat(e, "Say hi."), **GREEDY), Probe(e, chat(e, "Say bye."), **GREEDY)]
            monkeypatch.setattr(e.scheduler, "schedule", boom)
        return [(await p.result())[1] for p in probes]

    try:
        assert e.healthy and e.failure is None
        done = asyncio.run(scenario())
        assert [d.reason for d in done] == [FinishReason.ERROR] * 2
        assert all("boom" in d.error for d in done)
        e._thread.join(60)
        assert not e.healthy and e.failure is not None and "boom" in e.failure
        with pytest.raises(EngineFailed, match="boom"):
            e.generate(chat(e), SamplingParams())
        with pytest.raises(EngineFailed):
            e.submit(Request(prompt=[1], params=SamplingParams(), emit=lambda event: None))
    finally:
        e.close()


def test_a_failure_handling_one_request_spares_the_engine(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing inbox item used to kill the engine thread: every request then hung."""

    def broken(session: str) -> list[Request]:
        raise RuntimeError("bookkeeping failed")

    async def scenario() -> tuple[Done, str]:
        with held(engine):
            monkeypatch.setattr(engine.scheduler, "of_session", broken)
            failed = Probe(engine, chat(engine), session="s", **GREEDY)
        _, done = await failed.result()
        monkeypatch.undo()
        text, _ = await Probe(engine, chat(engine), **GREEDY).result()
        return done, text

    done, text = asyncio.run(scenario())
    assert done.reason == FinishReason.ERROR and "bookkeeping failed" in done.error
    assert engine.healthy and text


@pytest.fixture(scope="module")
def small(smollm2_gguf: Path) -> Iterator[Engine]:
    """Sequences of 128 tokens, so generation reaches the end of the context soon."""
    options = ContextOptions(n_ctx=2 * 128, n_ctx_seq=128, n_batch=128, n_seq_max=4)
    e = Engine(smollm2_gguf, LoadOptions(), options)
    yield e
    e.close()


def test_shift_generates_past_the_context_and_shift_false_stops(small: Engine) -> None:
    prompt = chat(small, "Write a long story about a dragon.")
    params = {"temperature": 0, "num_predict": 300, "ignore_eos": True}

    async def both() -> tuple[Done, Done]:
        shifted = (await Probe(small, prompt, **params).result())[1]
        stopped = (await Probe(small, prompt, **params, shift=False).result())[1]
        return shifted, stopped

    shifted, stopped = asyncio.run(both())
    assert shifted.reason == FinishReason.LENGTH and shifted.eval_count == 300, shifted.error
    assert stopped.reason == FinishReason.LENGTH and len(prompt) + stopped.eval_count == 128 + 1
    assert shifted.context[: len(prompt)] == prompt and len(shifted.context) == len(prompt) + 300


def test_a_shift_never_moves_cells_another_sequence_shares(small: Engine) -> None:
    """Copied prefixes share cells, and a cell has one position: the shifting request re-evaluates.

    A and B share 80 cells (copied prefixes); B keeps them idle for its editor's next request.
    A then shifts: keep 4, drop 62, so moving its tail in place would move B's cells at 66..79.
    """
    words = " ".join(f"item{i}" for i in range(60))
    shared = small.model.tokenize(words, add_bos=False)[:80]
    b_prompt = [*shared, *small.model.tokenize(" Then", add_bos=False)]
    b_params = {"temperature": 0, "num_predict": 6}
    reference = solo(small, b_prompt, session="reference", **b_params)
    b: list[Probe] = []

    async def scenario() -> tuple[Done, Done, tuple[str, Done]]:
        loop = asyncio.get_running_loop()

        def after_first_token(request: Request, event: Event) -> None:
            if not b and isinstance(event, Token):  # A's prompt is in the KV: B copies it
                b.append(Probe(small, b_prompt, session="b", loop=loop, **b_params))

        a = Probe(small, shared, on_event=after_first_token, temperature=0, num_predict=100, ignore_eos=True)
        await a.first_token()  # B was submitted before this event was
        first_b = (await b[0].result())[1]
        a_done = (await a.result())[1]
        return first_b, a_done, await Probe(small, b_prompt, session="b", **b_params).result()

    first_b, a_done, (text, again) = asyncio.run(scenario())
    assert first_b.prompt_cache_tokens == 80  # copied, so its cells are shared with A's
    assert a_done.reason == FinishReason.LENGTH and a_done.eval_count == 100, a_done.error
    assert again.prompt_cache_tokens == len(b_prompt) - 1  # B's own KV, kept while A shifted
    assert text == reference
