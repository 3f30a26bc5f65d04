"""A request's runner options, bounded: the key a loaded runner is reused by, and the context to create.

Resource options are clamped here, where the context is sized, so that no request value can
crash the process or allocate absurd memory: ``num_batch`` lies in [sequences, 8192] (below
the sequence count llama.cpp aborts; a huge one allocates its batch arrays up front),
``num_thread`` in [1, CPUs] (default: physical cores, see ``engine/cpus.py``), ``num_gpu`` at
most the layer count (+1 for the output layer);
a value that is not a positive finite number means the default (the API edge clamps first,
``options.RESOURCE_BOUNDS``; Modelfile parameters and direct callers come through here too).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from llamita.server import config
from llamita.server.engine import LoadOptions, physical_cores, supports_gpu
from llamita.server.model.model import StoredModel
from llamita.server.options import DEFAULT_NUM_CTX

from .knobs import Knobs, resolve
from .memory import has_recurrent_state

MAX_NUM_CTX = 1 << 17  # for a GGUF that does not say its training context
DEFAULT_NUM_BATCH = 512
MAX_BATCH = 8192
AUTO = -1  # num_gpu: as many layers as fit in free VRAM, decided when loading


@dataclass(frozen=True)
class LoadPlan:
    """What a request's options ask for, bounded: the reuse key and the context to create.

    ``num_gpu`` is the GPU layer count asked for (bounded; 0 without GPU support) or ``AUTO``;
    ``load.n_gpu_layers`` is that count, or 0 for ``AUTO`` until the load decides it.
    """

    load: LoadOptions
    num_ctx: int
    num_batch: int
    num_thread: int
    num_gpu: int
    parallel: int
    knobs: Knobs = field(default_factory=Knobs)  # num_parallel, flash attention, KV type, layout

    @property
    def n_seq_max(self) -> int:
        return _n_seq_max(self.parallel)


def _n_seq_max(parallel: int) -> int:
    return min(parallel * 2, 256)  # spare sequences keep superseded editors' KV


def load_options(model: StoredModel, options: dict[str, Any]) -> LoadPlan:
    """The bounded runner options for a request's merged options (see the module docstring)."""
    info = model.gguf
    knobs = resolve(model, options, recurrent=info is not None and has_recurrent_state(info))
    parallel = knobs.parallel
    requested = _option_int(options, "num_ctx") or 0
    num_ctx = requested if requested > 0 else config.context_length() or DEFAULT_NUM_CTX
    limit = info.context_length if info is not None and info.context_length else MAX_NUM_CTX
    num_ctx = max(min(num_ctx, limit), 4)
    n_seq_max = _n_seq_max(parallel)
    num_batch = _option_int(options, "num_batch") or 0
    num_batch = num_batch if num_batch > 0 else DEFAULT_NUM_BATCH
    num_batch = max(min(num_batch, MAX_BATCH), n_seq_max)  # and at most n_ctx: see ``_load``
    num_thread = _option_int(options, "num_thread") or 0
    num_thread = min(num_thread, os.cpu_count() or 1) if num_thread > 0 else physical_cores()
    num_gpu = _option_int(options, "num_gpu")
    if num_gpu == 0 or not supports_gpu():
        num_gpu = 0
    elif num_gpu is None or num_gpu < 0:
        num_gpu = AUTO
    else:
        num_gpu = min(num_gpu, info.block_count + 1 if info is not None and info.block_count else 1024)
    use_mmap = options.get("use_mmap")
    load = LoadOptions(
        n_gpu_layers=max(num_gpu, 0),
        use_mmap=True if use_mmap is None else bool(use_mmap),
        lora_paths=tuple(str(p) for p in model.adapter_paths),
    )
    return LoadPlan(load, num_ctx, num_batch, num_thread, num_gpu, parallel, knobs)


def _option_int(options: dict[str, Any], name: str) -> int | None:
    """An integer option, or None when absent or not a finite number (JSON allows 1e400)."""
    value = options.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return int(value)
