from __future__ import annotations

from pathlib import Path

import pytest

from llamita.server.ggufinfo import read_gguf
from llamita.server.memory import GPU_RESERVE, Estimate, estimate, layers_that_fit

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
    return Estimate(n, [layer] * n, other, kv)


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
