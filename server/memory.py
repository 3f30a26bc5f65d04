"""How much memory a loaded model needs, and how many layers fit on the GPU.

Estimates come from GGUF tensor sizes plus the KV cache (llama.cpp stores K and V in f16 by
default), following the shape of Ollama's pre-0.13 estimator: fill layers from the last
block down while they fit in free VRAM minus a fixed reserve for the compute graph.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from .ggufinfo import GGUFInfo

GPU_RESERVE = 512 * 1024**2  # CUDA context + compute buffers, roughly (Ollama reserves 457 MiB)
_BLOCK = re.compile(r"^blk\.(\d+)\.")


@dataclass(frozen=True)
class Estimate:
    n_layers: int
    layer_bytes: list[int]  # weights per block
    other_bytes: int  # embeddings, output head, norms
    kv_bytes_per_layer: int

    @property
    def total(self) -> int:
        return sum(self.layer_bytes) + self.other_bytes + self.kv_bytes_per_layer * self.n_layers

    def vram_for(self, gpu_layers: int) -> int:
        """Bytes on the GPU with the last ``gpu_layers`` blocks (and the head, if all) offloaded."""
        gpu_layers = max(0, min(gpu_layers, self.n_layers + 1))
        blocks = min(gpu_layers, self.n_layers)
        used = sum(self.layer_bytes[self.n_layers - blocks :]) + blocks * self.kv_bytes_per_layer
        if gpu_layers > self.n_layers:
            used += self.other_bytes
        return used


def estimate(info: GGUFInfo, n_ctx_total: int) -> Estimate:
    """Weights per block from the tensor table, plus an f16 KV cache of ``n_ctx_total`` cells."""
    n_layers = info.block_count or 0
    layer_bytes = [0] * n_layers
    other = 0
    for tensor in info.tensors:
        m = _BLOCK.match(tensor.name)
        if m and int(m.group(1)) < n_layers:
            layer_bytes[int(m.group(1))] += tensor.n_bytes
        else:
            other += tensor.n_bytes
    arch = info.architecture
    kv = info.kv
    n_head = int(kv.get(f"{arch}.attention.head_count") or 1)
    n_head_kv = int(kv.get(f"{arch}.attention.head_count_kv") or n_head)
    n_embd = int(kv.get(f"{arch}.embedding_length") or 0)
    head_k = int(kv.get(f"{arch}.attention.key_length") or (n_embd // max(n_head, 1)))
    head_v = int(kv.get(f"{arch}.attention.value_length") or head_k)
    kv_per_layer = n_ctx_total * (head_k + head_v) * n_head_kv * 2
    return Estimate(n_layers, layer_bytes, other, kv_per_layer)


def layers_that_fit(est: Estimate, free_vram: int) -> int:
    """Ollama's count: blocks that fit (+1 when the output layer fits too)."""
    budget = free_vram - GPU_RESERVE
    if budget <= 0:
        return 0
    for layers in range(est.n_layers + 1, -1, -1):
        if est.vram_for(layers) <= budget:
            return layers
    return 0


def free_vram() -> int | None:
    """Free memory of the first NVIDIA GPU via nvidia-smi, or None when there is none."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        return int(out.split()[0]) * 1024**2
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None
