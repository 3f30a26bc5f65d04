"""The lazy grammar on the real SmolLM2 GGUF: same greedy output as grammar-first, valid JSON.

The chain samples without the grammar and the grammar checks only that token; a rejected
token makes the grammar run over every candidate.  Greedy, that is exactly the grammar-first
(eager) result, so the eager chain is the reference here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import llama_cpp as ll
import pytest
from enginekit import CHAT, collect

from llamita.server.engine.core import Engine
from llamita.server.engine.llama import Context, ContextOptions, LoadOptions, Model
from llamita.server.engine.request import Done, FinishReason, SamplingParams
from llamita.server.engine.sampling import Sampler, format_grammar

pytestmark = pytest.mark.model

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}
# The model answers the question, not with a JSON object: its first token is rejected.
NUMBER_ONLY = {"type": "object", "properties": {"zz": {"type": "integer"}}, "required": ["zz"]}


@pytest.fixture(scope="module")
def model(smollm2_gguf: Path) -> Iterator[Model]:
    m = Model(smollm2_gguf, LoadOptions())
    yield m
    m.close()


@pytest.fixture(scope="module")
def ctx(model: Model) -> Iterator[Context]:
    c = Context(model, ContextOptions(n_ctx=1024, n_ctx_seq=1024, n_batch=256, n_seq_max=1, n_threads=1))
    yield c
    c.close()


def generate(model: Model, ctx: Context, question: str, n: int, *, lazy: bool, **params) -> tuple[str, int]:
    """Up to ``n`` tokens for ``question`` on sequence 0; the text and how many were resampled."""
    text, resampled, _ = generate_tokens(model, ctx, question, n, lazy=lazy, **params)
    return text, resampled


def generate_tokens(
    model: Model, ctx: Context, question: str, n: int, *, lazy: bool, **params
) -> tuple[str, int, list[int]]:
    ctx.clear()
    prompt = model.tokenize(CHAT.format(question))
    sampler = Sampler(model.vocab, SamplingParams(**params), model.n_vocab, 1024, lazy_grammar=lazy)
    try:
        sampler.accept_prompt(prompt)
        tokens, pos, out = prompt, 0, []
        for _ in range(n):
            ctx.batch.clear()
            for i, token in enumerate(tokens):
                ctx.batch.add(token, pos + i, 0, i == len(tokens) - 1)
            assert ctx.decode() == 0
            pos += len(tokens)
            token = sampler.sample(ctx.ptr, len(tokens) - 1)
            if model.is_eog(token):
                break
            out.append(token)
            tokens = [token]
        return model.detokenize(out), sampler.resampled, out
    finally:
        sampler.close()


QUESTIONS = ["Describe a person as JSON.", "What is the capital of France?", "List three colors."]


@pytest.mark.parametrize("question", QUESTIONS)
@pytest.mark.parametrize("fmt", ["json", PERSON], ids=["json", "schema"])
def test_greedy_lazy_equals_eager(model: Model, ctx: Context, question: str, fmt: object) -> None:
    params = {"temperature": 0, "grammar": format_grammar(fmt)}
    eager, none = generate(model, ctx, question, 32, lazy=False, **params)
    lazy, _ = generate(model, ctx, question, 32, lazy=True, **params)
    assert none == 0 and lazy == eager and lazy.lstrip().startswith("{")


def test_the_grammar_runs_over_the_vocabulary_only_for_rejected_tokens(model: Model, ctx: Context) -> None:
    """Asked for JSON, the model's own choices mostly fit: few tokens need the full pass."""
    text, resampled, tokens = generate_tokens(
        model, ctx, "Describe a person as JSON.", 32, lazy=True, temperature=0, grammar=format_grammar("json")
    )
    assert len(tokens) == 32 and resampled <= 4, (resampled, text)


def test_greedy_lazy_equals_eager_with_penalties(model: Model, ctx: Context) -> None:
    """The penalties see each generated token once, whichever path chose it."""
    params = {"temperature": 0, "grammar": format_grammar(PERSON), "repeat_penalty": 1.3, "repeat_last_n": 64}
    eager, _ = generate(model, ctx, "Describe a person as JSON.", 48, lazy=False, **params)
    lazy, _ = generate(model, ctx, "Describe a person as JSON.", 48, lazy=True, **params)
    assert lazy == eager


def test_a_rejected_token_is_sampled_again_under_the_grammar(model: Model, ctx: Context) -> None:
    grammar = format_grammar(NUMBER_ONLY)
    free, _ = generate(model, ctx, "Say hi.", 8, lazy=True, temperature=0)
    text, resampled = generate(model, ctx, "Say hi.", 64, lazy=True, temperature=0, grammar=grammar)
    assert not free.lstrip().startswith("{")  # the model's own first choice breaks the schema
    assert resampled >= 1
    value = json.loads(text)
    assert set(value) == {"zz"} and isinstance(value["zz"], int)


def test_sampling_with_temperature_stays_inside_the_grammar(model: Model, ctx: Context) -> None:
    """Every sampled token is one a fresh grammar accepts at its place (checked token by token)."""
    grammar = format_grammar(PERSON)
    for seed in (1, 2):
        text, _, tokens = generate_tokens(
            model, ctx, "Say hi.", 24, lazy=True, temperature=1.5, seed=seed, grammar=grammar
        )
        checker = Sampler(model.vocab, SamplingParams(grammar=grammar), model.n_vocab, lazy_grammar=True)
        try:
            for token in tokens:
                assert checker._allows(token), text
                ll.llama_sampler_accept(checker._grammar, token)
        finally:
            checker.close()


@pytest.fixture(scope="module")
def engine(smollm2_gguf: Path) -> Iterator[Engine]:
    e = Engine(
        smollm2_gguf,
        LoadOptions(),
        ContextOptions(n_ctx=2 * 1024, n_ctx_seq=1024, n_batch=256, n_seq_max=2, n_threads=1),
    )
    yield e
    e.close()


@pytest.mark.parametrize("fmt", ["json", PERSON, NUMBER_ONLY], ids=["json", "schema", "rejects-first"])
def test_engine_format_output_parses(engine: Engine, fmt: object) -> None:
    """Through the engine, beside a free request, so the two share steps."""

    async def both() -> list[tuple[str, Done]]:
        return await asyncio.gather(
            collect(engine, "Describe a person.", temperature=0, num_predict=96, grammar=format_grammar(fmt)),
            collect(engine, "Say hi.", temperature=0, num_predict=16),
        )

    (text, done), (free, free_done) = asyncio.run(both())
    assert done.reason == FinishReason.STOP and free_done.error == "" and free
    value = json.loads(text)
    if isinstance(fmt, dict):
        assert set(value) == set(fmt["required"])
        for key, spec in fmt["properties"].items():
            assert isinstance(value[key], {"string": str, "integer": int}[spec["type"]])
