"""Per-model knobs fixed when a model loads: parallel requests, flash attention, KV cache type
and KV layout.  Resolved here from the model's PARAMETERs and the environment, so that
``runners`` only carries them into the ``ContextOptions`` and its reload check.

Precedence, first that applies:

* ``num_parallel``: ``LLAMITA_NUM_PARALLEL`` (an operator's override, per model or for all), the
  model's ``num_parallel`` PARAMETER, ``OLLAMA_NUM_PARALLEL``, 4.  Recurrent and hybrid models
  run one request at a time whatever is asked (see ``runners``).
* ``flash_attn``: the model's PARAMETER (its author knows whether it works), then
  ``OLLAMA_FLASH_ATTENTION``, then off on a CPU-only build (unless the KV cache is quantized)
  and llama.cpp's choice on a GPU build.
* KV cache type (``OLLAMA_KV_CACHE_TYPE``) and layout (``LLAMITA_KV_UNIFIED``): server-wide, as
  in Ollama; the layout by default is one unified pool on a GPU build and a pool per sequence
  on a CPU-only one (measured faster there).  A quantized cache with flash attention forced off
  falls back to f16 with a warning when the context is created (``ContextOptions.kv_type``).

A loaded runner is reused only when its knobs are the ones a request resolves to
(:func:`same_knobs`): two model names over one GGUF with different ``num_parallel`` each get
the context they ask for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llamita.server import config
from llamita.server.engine import ContextOptions, supports_gpu
from llamita.server.model.model import StoredModel
from llamita.server.options import MAX_NUM_PARALLEL


@dataclass(frozen=True)
class Knobs:
    parallel: int = 4
    flash_attn: bool | None = None
    cache_type: str = "f16"
    kv_unified: bool = True


def resolve(model: StoredModel, options: Mapping[str, Any], *, recurrent: bool = False) -> Knobs:
    """The knobs for a request's merged options (model PARAMETERs under request options)."""
    param = options.get("num_parallel")
    param = param if isinstance(param, int) and not isinstance(param, bool) and param > 0 else None
    parallel = config.num_parallel_override(_name(model)) or param or config.num_parallel()
    flash = options.get("flash_attn")
    flash = flash if isinstance(flash, bool) else config.flash_attention()
    cache_type = config.kv_cache_type()
    if flash is None and not supports_gpu():
        # llama.cpp's choice turns it on for the CPU too, where its kernel is slow on the
        # small batches decoding and chunked prefill make: a token at 2k context took 39 ms
        # with it and 17 ms without (SmolLM2, 2 threads).  A quantized cache needs it.
        flash = cache_type != "f16"
    unified = config.kv_unified()
    if unified is None:
        # Measured on the 2-core box (bench/peers.py burst, SmolLM2): per-sequence KV served
        # 1.1-1.3x the tokens/s of one unified pool, whose steps cost grows with all sequences'
        # cells.  Not measured on a GPU yet: there the unified pool stays (bench/kvmode.py).
        unified = supports_gpu()
    return Knobs(
        parallel=1 if recurrent else max(1, min(parallel, MAX_NUM_PARALLEL)),
        flash_attn=flash,
        cache_type=cache_type,
        kv_unified=unified,
    )


def context_options(
    knobs: Knobs, *, num_ctx: int, num_batch: int, n_seq_max: int, num_thread: int
) -> ContextOptions:
    """The engine's context: ``parallel`` running requests of ``num_ctx`` tokens each (the
    cells they share in a unified cache), ``n_seq_max`` sequences in all."""
    return ContextOptions(
        n_ctx=num_ctx * knobs.parallel,
        n_ctx_seq=num_ctx,
        n_batch=max(min(num_batch, num_ctx * knobs.parallel), n_seq_max),
        n_seq_max=n_seq_max,
        n_threads=num_thread,
        flash_attn=knobs.flash_attn,
        cache_type=knobs.cache_type,
        kv_unified=knobs.kv_unified,
    )


def same_knobs(context: ContextOptions, knobs: Knobs) -> bool:
    """Whether a loaded context was made with ``knobs`` (else the model is loaded again)."""
    return (
        context.n_ctx // max(context.n_ctx_seq, 1) == knobs.parallel
        and context.flash_attn == knobs.flash_attn
        and context.cache_type == knobs.cache_type
        and context.kv_unified == knobs.kv_unified
    )


def _name(model: StoredModel) -> str:
    try:
        return model.short_name
    except AttributeError:  # a test double without a name
        return ""
