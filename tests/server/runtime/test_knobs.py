"""Per-model knobs end to end with a fake engine: a Modelfile PARAMETER or the environment
decides the context a model is loaded with (parallel requests, flash attention, KV type and
layout), and a runner is reused only with the same knobs."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, ClassVar

import pytest

from llamita.server.engine import ContextOptions
from llamita.server.model.create import create, import_gguf
from llamita.server.model.model import StoredModel, load_model
from llamita.server.model.modelfile import ModelfileError, parse
from llamita.server.model.modelfile_plan import to_create_request
from llamita.server.options import OptionError, format_params, merge_options, validate_parameters
from llamita.server.runtime.runners import Runner, Runners
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
def base(store: Store, tmp_path: Path) -> Store:
    """A store with model ``base`` over a tiny GGUF."""
    from ggufgen import write_tiny_gguf

    import_gguf(store, "base", write_tiny_gguf(tmp_path / "base.gguf"))
    FakeEngine.made = []
    return store


def from_modelfile(store: Store, name: str, text: str) -> StoredModel:
    """Create ``name`` as ``llamita create -f`` would, and load it."""
    plan = to_create_request(parse(text), ".")
    for _ in create(store, {"model": name, **plan.request}):
        pass
    return load_model(store, require_name(name))


def load(model: StoredModel, requested: dict[str, Any] | None = None) -> Runner:
    """The runner a request for ``model`` gets (options merged as the API merges them)."""

    async def scenario() -> Runner:
        runners = Runners(FakeEngine)
        runner = await runners.acquire(model, merge_options(model.options, requested), 0)
        runners.release(runner)
        await runners.close()
        return runner

    return asyncio.run(scenario())


def parallel(context: ContextOptions) -> int:
    """Requests the engine runs at once: it derives them as ``n_ctx // n_ctx_seq``."""
    return context.n_ctx // context.n_ctx_seq


def test_a_num_parallel_parameter_sets_the_running_sequences(base: Store) -> None:
    model = from_modelfile(base, "two", "FROM base\nPARAMETER num_parallel 2\nPARAMETER num_ctx 128")
    assert model.options["num_parallel"] == 2
    context = load(model).context
    assert parallel(context) == 2 and context.n_seq_max == 4 and context.n_ctx_seq == 128


def test_ollama_num_parallel_is_the_default_and_llamita_num_parallel_overrides(
    base: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_NUM_PARALLEL", "3")
    plain = load_model(base, require_name("base"))
    two = from_modelfile(base, "two", "FROM base\nPARAMETER num_parallel 2")
    assert parallel(load(plain).context) == 3  # no PARAMETER: the environment's default
    assert parallel(load(two).context) == 2  # the PARAMETER wins over the default
    monkeypatch.setenv("LLAMITA_NUM_PARALLEL", "5")
    assert parallel(load(two).context) == 5  # the override wins over the PARAMETER
    monkeypatch.setenv("LLAMITA_NUM_PARALLEL", "5, two=6")
    assert parallel(load(two).context) == 6 and parallel(load(plain).context) == 5


def test_a_request_cannot_set_the_model_only_knobs(base: Store, caplog: pytest.LogCaptureFixture) -> None:
    two = from_modelfile(base, "two", "FROM base\nPARAMETER num_parallel 2")
    with caplog.at_level(logging.WARNING):
        merged = merge_options(two.options, {"num_parallel": 7, "flash_attn": True})
    assert merged["num_parallel"] == 2 and "flash_attn" not in merged
    assert "num_parallel is set per model" in caplog.text


def test_flash_attn_parameter_wins_over_the_environment(base: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_FLASH_ATTENTION", "1")
    plain = load_model(base, require_name("base"))
    off = from_modelfile(base, "nofa", "FROM base\nPARAMETER flash_attn false")
    assert load(plain).context.flash_attn is True
    assert load(off).context.flash_attn is False
    monkeypatch.delenv("OLLAMA_FLASH_ATTENTION")
    # Unset: llama.cpp decides on a GPU build; a CPU-only build runs without it (slow small
    # batches), unless the KV cache is quantized, which needs it.
    gpu = "llamita.server.runtime.knobs.supports_gpu"
    monkeypatch.setattr(gpu, lambda: True)
    assert load(plain).context.flash_attn is None
    monkeypatch.setattr(gpu, lambda: False)
    assert load(plain).context.flash_attn is False
    monkeypatch.setenv("OLLAMA_KV_CACHE_TYPE", "q8_0")
    assert load(plain).context.flash_attn is True


def test_kv_cache_type_and_layout_reach_the_context(base: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    model = from_modelfile(base, "two", "FROM base\nPARAMETER num_parallel 2\nPARAMETER num_ctx 128")
    monkeypatch.setenv("LLAMITA_KV_UNIFIED", "1")
    context = load(model).context
    assert context.cache_type == "f16" and context.kv_unified and context.cells == 2 * 128
    monkeypatch.setenv("OLLAMA_KV_CACHE_TYPE", "Q8_0")
    monkeypatch.setenv("LLAMITA_KV_UNIFIED", "0")
    context = load(model).context
    assert context.cache_type == "q8_0" and context.kv_type == "q8_0"
    # Per-sequence KV: every one of the 4 sequences gets num_ctx cells; still 2 run at once.
    assert not context.kv_unified and context.cells == 4 * 128 and parallel(context) == 2


def test_a_quantized_cache_without_flash_attention_is_f16(
    base: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_KV_CACHE_TYPE", "q4_0")
    nofa = from_modelfile(base, "nofa", "FROM base\nPARAMETER flash_attn false")
    context = load(nofa).context
    assert context.cache_type == "q4_0" and context.kv_type == "f16"  # Context warns and uses f16


def test_a_runner_is_reused_only_with_the_same_knobs(base: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = load_model(base, require_name("base"))
    two = from_modelfile(base, "two", "FROM base\nPARAMETER num_parallel 2")
    also_four = from_modelfile(base, "four", "FROM base\nPARAMETER num_parallel 4")

    async def scenario(first: StoredModel, second: StoredModel) -> bool:
        runners = Runners(FakeEngine)
        a = await runners.acquire(first, merge_options(first.options, None), 60)
        runners.release(a)
        b = await runners.acquire(second, merge_options(second.options, None), 60)
        runners.release(b)
        await runners.close()
        return a is b

    assert asyncio.run(scenario(plain, also_four))  # one GGUF, the same knobs: shared
    assert not asyncio.run(scenario(plain, two))  # another num_parallel: loaded again
    monkeypatch.setenv("OLLAMA_KV_CACHE_TYPE", "q8_0")

    async def changed_env() -> bool:
        runners = Runners(FakeEngine)
        a = await runners.acquire(plain, {}, 60)
        runners.release(a)
        monkeypatch.setenv("OLLAMA_KV_CACHE_TYPE", "f16")
        b = await runners.acquire(plain, {}, 60)
        runners.release(b)
        await runners.close()
        return a is b

    assert not asyncio.run(changed_env())


def test_recurrent_models_stay_at_one_sequence_whatever_is_asked(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ggufgen import write_tiny_mamba_gguf

    monkeypatch.setenv("LLAMITA_NUM_PARALLEL", "8")
    import_gguf(store, "mamba", write_tiny_mamba_gguf(tmp_path / "m.gguf"))
    model = from_modelfile(store, "m2", "FROM mamba\nPARAMETER num_parallel 4")
    assert parallel(load(model).context) == 1


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"num_parallel": ["2"]}, {"num_parallel": 2}),
        ({"flash_attn": ["true"]}, {"flash_attn": True}),
        ({"flash_attn": ["0"]}, {"flash_attn": False}),
    ],
)
def test_modelfile_parameters_accept_the_knobs(
    params: dict[str, list[str]], expected: dict[str, Any]
) -> None:
    assert format_params(params) == expected


def test_the_knobs_are_typed_like_other_parameters() -> None:
    with pytest.raises(OptionError, match=r"invalid int value \[two\]"):
        format_params({"num_parallel": ["two"]})
    with pytest.raises(ModelfileError, match="invalid bool value"):
        to_create_request(parse("FROM x\nPARAMETER flash_attn maybe"), ".")
    with pytest.raises(OptionError, match='option "num_parallel" must be of type integer'):
        validate_parameters({"num_parallel": "2"})
    validate_parameters({"num_parallel": 2, "flash_attn": False})
    with pytest.raises(OptionError, match="unknown parameter 'num_parallell'"):
        format_params({"num_parallell": ["2"]})  # Ollama's strictness about names still holds


def test_out_of_range_num_parallel_is_clamped() -> None:
    assert merge_options({"num_parallel": 10_000}, None)["num_parallel"] == 128
    assert merge_options({"num_parallel": -3}, None)["num_parallel"] == 0  # 0: the environment decides


def test_the_automatic_kv_layout_is_unified_on_a_gpu_build_and_per_sequence_on_a_cpu_one(
    base: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = load_model(base, require_name("base"))
    monkeypatch.setattr("llamita.server.runtime.knobs.supports_gpu", lambda: True)
    assert load(model).context.kv_unified
    monkeypatch.setattr("llamita.server.runtime.knobs.supports_gpu", lambda: False)
    assert not load(model).context.kv_unified
