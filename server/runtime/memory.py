"""How much memory a loaded model needs, how many layers fit on the GPU, and what is free.

Estimates come from GGUF tensor sizes plus the KV cache (llama.cpp stores K and V in f16 by
default), following the shape of Ollama's pre-0.13 estimator: fill layers from the last
block down while they fit in free VRAM minus a fixed reserve for the compute graph.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from dataclasses import dataclass

from llamita.server.model.ggufinfo import GGUFInfo

GPU_RESERVE = 512 * 1024**2  # CUDA context + compute buffers, roughly (Ollama reserves 457 MiB)
_BLOCK = re.compile(r"^blk\.(\d+)\.")
_F32 = 4

# Architectures whose memory holds recurrent state (llama.cpp's llm_arch_is_recurrent and
# llm_arch_is_hybrid).  Decided from the GGUF before loading, because the sequence count is
# part of the context; the loaded model's own flags (``llama_model_is_recurrent``/``_hybrid``)
# then decide how the engine may reuse that state.
RECURRENT_ARCHS = frozenset({"mamba", "mamba2", "rwkv6", "rwkv6qwen2", "rwkv7", "arwkv7"})
HYBRID_ARCHS = frozenset(
    {
        "jamba",
        "falcon-h1",
        "plamo2",
        "granitehybrid",
        "lfm2",
        "lfm2moe",
        "nemotron_h",
        "nemotron_h_moe",
        "qwen3next",
        "kimi-linear",
        "bailingmoe3",
        "kimi-k3",
        "glm5-next",
        "qwen35",
        "qwen35moe",
        "qwen4exp",
        "deepseek4",
        "minimax-01",
    }
)


def has_recurrent_state(info: GGUFInfo) -> bool:
    """True for recurrent and hybrid models: their per-sequence state cannot be cut or shared
    at a token position, so one sequence cannot reuse another's prefix (Ollama runs them with
    one parallel request)."""
    return info.architecture in RECURRENT_ARCHS or info.architecture in HYBRID_ARCHS


@dataclass(frozen=True)
class Estimate:
    n_layers: int
    layer_bytes: list[int]  # weights per block
    other_bytes: int  # embeddings, output head, norms
    cache_bytes: list[int]  # per block: its KV cache (attention) or recurrent state
    embed_bytes: int = 0  # an embedding context (its own KV cache and outputs), when counted

    @property
    def kv_bytes_per_layer(self) -> int:
        """The largest block's cache (equal for every block of a plain transformer)."""
        return max(self.cache_bytes, default=0)

    @property
    def total(self) -> int:
        return sum(self.layer_bytes) + self.other_bytes + sum(self.cache_bytes) + self.embed_bytes

    def vram_for(self, gpu_layers: int) -> int:
        """Bytes on the GPU with the last ``gpu_layers`` blocks (and the head, if all) offloaded."""
        gpu_layers = max(0, min(gpu_layers, self.n_layers + 1))
        blocks = min(gpu_layers, self.n_layers)
        first = self.n_layers - blocks
        used = sum(self.layer_bytes[first:]) + sum(self.cache_bytes[first:])
        if gpu_layers > self.n_layers:
            used += self.other_bytes + self.embed_bytes
        return used


def estimate(info: GGUFInfo, n_ctx_total: int, n_seq: int = 1, embed_tokens: int = 0) -> Estimate:
    """Weights per block from the tensor table, an f16 KV cache of ``n_ctx_total`` cells on
    attention blocks, f32 recurrent state for ``n_seq`` sequences on recurrent blocks, and an
    embedding context for inputs of ``embed_tokens`` tokens (0: none)."""
    n_layers = info.block_count or 0
    layer_bytes = [0] * n_layers
    other = 0
    for tensor in info.tensors:
        size = tensor.n_bytes if tensor.n_bytes is not None else tensor.n_elements
        m = _BLOCK.match(tensor.name)
        if m and int(m.group(1)) < n_layers:
            layer_bytes[int(m.group(1))] += size
        else:
            other += size
    shape = _Shape(info)
    cache = [
        shape.state_bytes(il) * max(n_seq, 1) if shape.recurrent(il) else shape.kv_bytes(il, n_ctx_total)
        for il in range(n_layers)
    ]
    embed = embed_context_bytes(info, embed_tokens) if embed_tokens > 0 else 0
    return Estimate(n_layers, layer_bytes, other, cache, embed)


def embed_context_bytes(info: GGUFInfo, n_tokens: int) -> int:
    """An embedding context for one ``n_tokens`` batch: its KV cache plus every token's
    logits and embedding (llama.cpp outputs all tokens of an embedding batch)."""
    shape = _Shape(info)
    n_vocab = len(info.tokens) or int(info.kv.get(f"{info.architecture}.vocab_size") or 0)
    kv = sum(shape.kv_bytes(il, n_tokens) for il in range(info.block_count or 0) if not shape.recurrent(il))
    outputs = n_tokens * (n_vocab + 2 * shape.n_embd) * _F32  # host copy + compute buffer
    return kv + 2 * outputs


class _Shape:
    """Per-block cache sizes from the GGUF's hyper-parameters.

    Hybrid converters (LFM2, Jamba, Nemotron-H, Granite-H) write ``head_count_kv`` (sometimes
    ``head_count``) as a per-layer list with 0 on the recurrent blocks, so every count is read
    per layer.
    """

    def __init__(self, info: GGUFInfo) -> None:
        self.arch = info.architecture
        self.kv = info.kv
        self.n_layers = info.block_count or 0
        self.n_embd = self._int("embedding_length")
        self.n_head = self._per_layer("attention.head_count", 1)
        self.n_head_kv = self._per_layer("attention.head_count_kv", None) or self.n_head
        self.all_recurrent = self.arch in RECURRENT_ARCHS
        self.hybrid = self.arch in HYBRID_ARCHS

    def _int(self, key: str, default: int = 0) -> int:
        value = self.kv.get(f"{self.arch}.{key}")
        return _as_int(value, default)

    def _per_layer(self, key: str, default: int | None) -> list[int] | None:
        value = self.kv.get(f"{self.arch}.{key}")
        if isinstance(value, list):
            values = [_as_int(v, 0) for v in value[: self.n_layers]]
            return values + [values[-1] if values else 0] * (self.n_layers - len(values))
        if value is None and default is None:
            return None
        return [_as_int(value, default or 0)] * self.n_layers

    def recurrent(self, il: int) -> bool:
        assert self.n_head_kv is not None
        return self.all_recurrent or (self.hybrid and self.n_head_kv[il] == 0)

    def kv_bytes(self, il: int, n_ctx: int) -> int:
        """f16 K and V for ``n_ctx`` cells of block ``il``."""
        assert self.n_head_kv is not None
        n_head = max(self.n_head[il], 1) if self.n_head else 1
        head_k = self._int("attention.key_length") or self.n_embd // n_head
        head_v = self._int("attention.value_length") or head_k
        return n_ctx * (head_k + head_v) * self.n_head_kv[il] * 2

    def state_bytes(self, il: int) -> int:
        """f32 recurrent state of one sequence in block ``il`` (llama.cpp's n_embd_r + n_embd_s)."""
        d_conv = self._int("ssm.conv_kernel")
        d_inner = self._int("ssm.inner_size")
        d_state = self._int("ssm.state_size")
        n_group = self._int("ssm.group_count")
        l_cache = self._int("shortconv.l_cache")
        wkv = self._int("wkv.head_size")
        if wkv:
            r, s = self._int("token_shift_count", 2) * self.n_embd, self.n_embd * wkv
        elif l_cache:
            r, s = self.n_embd * (l_cache - 1), d_state * d_inner
        else:
            r, s = max(d_conv - 1, 0) * (d_inner + 2 * n_group * d_state), d_state * d_inner
        if r + s == 0:  # an architecture this estimator does not know: a generous guess
            r = 4 * self.n_embd * 16
        return (r + s) * _F32


def _as_int(value: object, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return default
    return int(value)


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


def available_memory() -> int | None:
    """Bytes of RAM the kernel says a new allocation can get (Linux), else None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
