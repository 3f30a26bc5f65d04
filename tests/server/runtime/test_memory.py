from __future__ import annotations

from pathlib import Path

import pytest

from llamita.server.model.ggufinfo import GGUFInfo, read_gguf
from llamita.server.runtime.memory import (
    GPU_RESERVE,
    Estimate,
    embed_context_bytes,
    estimate,
    has_recurrent_state,
    layers_that_fit,
)

MiB = 1024**2


def test_estimate_of_smollm2(smollm2_gguf: Path) -> None:
    info = read_gguf(smollm2_gguf)
    est = estimate(info, n_ctx_total=4096)
    assert est.n_layers == 30
    assert sum(est.layer_bytes) + est.other_bytes == sum(t.n_bytes for t in info.tensors)
    # 9 heads of 64 dims, 3 KV heads: K and V in f16 for 4096 cells.
    assert est.kv_bytes_per_layer == 4096 * (64 + 64) * 3 * 2
    assert est.vram_for(0) == 0
    assert est.vram_for(31) == est.total


def make(n: int, layer: int, other: int, kv: int) -> Estimate:
    return Estimate(n, [layer] * n, other, [kv] * n)


@pytest.mark.parametrize(
    ("free", "expected"),
    [
        (0, 0),
        (GPU_RESERVE, 0),
        (GPU_RESERVE + 150 * MiB, 1),  # one block + its KV
        (GPU_RESERVE + 1000 * MiB, 10),  # every block, not the output layer
        (GPU_RESERVE + 1200 * MiB, 11),  # everything, output layer included
    ],
    ids=["nothing", "reserve-only", "one-layer", "all-blocks", "all"],
)
def test_layers_that_fit(free: int, expected: int) -> None:
    est = make(10, 90 * MiB, 150 * MiB, 10 * MiB)
    assert layers_that_fit(est, free) == expected


def hybrid_info(tmp_path: Path, arch: str, kv: dict[str, object], n_layers: int = 4) -> GGUFInfo:
    """A header-only GGUFInfo: what LFM2/Nemotron-H/Jamba converters write, without weights."""
    base = {
        "general.architecture": arch,
        f"{arch}.block_count": n_layers,
        f"{arch}.embedding_length": 1024,
        f"{arch}.context_length": 4096,
    }
    base |= {f"{arch}.{k}": v for k, v in kv.items()}
    return GGUFInfo(tmp_path / "x.gguf", 3, base, {}, [], 0, 0)


def test_estimate_takes_per_layer_head_counts(tmp_path: Path) -> None:
    """LFM2 writes head_count_kv per layer, 0 on its convolution layers (this raised TypeError)."""
    info = hybrid_info(
        tmp_path,
        "lfm2",
        {
            "attention.head_count": 16,
            "attention.head_count_kv": [0, 8, 0, 8],
            "shortconv.l_cache": 3,
        },
    )
    est = estimate(info, n_ctx_total=4096, n_seq=2)
    kv = 4096 * (64 + 64) * 8 * 2  # head dim 1024 / 16, K and V in f16
    state = 2 * 1024 * (3 - 1) * 4  # two sequences of (l_cache - 1) x n_embd f32
    assert est.cache_bytes == [state, kv, state, kv]
    assert est.kv_bytes_per_layer == kv
    assert has_recurrent_state(info)


def test_estimate_takes_a_per_layer_head_count(tmp_path: Path) -> None:
    """Some converters write head_count as a list too (0 on the recurrent layers)."""
    info = hybrid_info(
        tmp_path,
        "jamba",
        {
            "attention.head_count": [0, 32, 0, 32],
            "attention.head_count_kv": [0, 8, 0, 8],
            "ssm.conv_kernel": 4,
            "ssm.inner_size": 2048,
            "ssm.state_size": 16,
        },
    )
    est = estimate(info, n_ctx_total=1024)
    kv = 1024 * (32 + 32) * 8 * 2
    state = ((4 - 1) * 2048 + 16 * 2048) * 4
    assert est.cache_bytes == [state, kv, state, kv]


def test_recurrent_model_has_no_kv_cache(tmp_path: Path) -> None:
    from ggufgen import SSM_D_CONV, SSM_D_INNER, SSM_D_STATE, write_tiny_mamba_gguf

    info = read_gguf(write_tiny_mamba_gguf(tmp_path / "m.gguf"))
    est = estimate(info, n_ctx_total=100_000, n_seq=2)
    per_seq = ((SSM_D_CONV - 1) * SSM_D_INNER + SSM_D_STATE * SSM_D_INNER) * 4
    assert est.cache_bytes == [2 * per_seq] * info.block_count  # independent of the context
    assert has_recurrent_state(info)


def test_embedding_context_is_counted(smollm2_gguf: Path) -> None:
    info = read_gguf(smollm2_gguf)
    plain = estimate(info, n_ctx_total=4096)
    with_embed = estimate(info, n_ctx_total=4096, embed_tokens=512)
    assert with_embed.embed_bytes == embed_context_bytes(info, 512)
    # every output's logits (49k vocab) dominate: at least 512 x n_vocab floats
    assert with_embed.total - plain.total >= 512 * len(info.tokens) * 4
    assert with_embed.vram_for(31) - plain.vram_for(31) == with_embed.embed_bytes
    assert not has_recurrent_state(info)


def test_available_memory_is_bytes_or_unknown() -> None:
    from llamita.server.runtime.memory import available_memory

    available = available_memory()
    assert available is None or available > 0
