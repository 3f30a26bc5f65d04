"""Re-quantize a GGUF with llama.cpp (``/api/create`` with ``quantize``).

Ollama shells out to ``llama-quantize``; llamita calls the same library routine,
``llama_model_quantize``, through :mod:`llamita.server.engine.quantize`. That routine has no
progress callback and cannot be cancelled, so ``quantize`` watches the output file grow from a
helper thread and reports ``(completed, total)`` bytes against an estimate of the final size,
finishing with ``(total, total)``. The output is written to a temporary file beside ``dst`` and
renamed over it only on success, so a failed run never leaves a half-written model in the store.

Accepted names are Ollama's (F32, F16, BF16, Q8_0, Q4_K_S, Q4_K_M and the alias Q4_K) plus
llamita's extra llama.cpp types (Q4_0, Q4_1, Q5_0, Q5_1, Q5_K_S, Q5_K_M, Q6_K, Q3_K_S/M/L, Q2_K
and the aliases Q3_K, Q5_K). Sources must be unquantized (F32, F16 or BF16), as in Ollama.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from llamita.server.engine.quantize import quantize_file

from .ggufinfo import FILE_TYPE_IDS, GGUFInfo, read_gguf

Progress = Callable[[int, int], None]

# Ollama's list, in the order its error message prints it, then llamita's additions.
_OLLAMA_TYPES = ("F32", "F16", "Q4_K_S", "Q4_K_M", "Q8_0")
_LLAMITA_TYPES = (
    "BF16",
    "Q4_0",
    "Q4_1",
    "Q5_0",
    "Q5_1",
    "Q5_K_S",
    "Q5_K_M",
    "Q6_K",
    "Q3_K_S",
    "Q3_K_M",
    "Q3_K_L",
    "Q2_K",
)
SUPPORTED_QUANTIZATIONS: tuple[str, ...] = _OLLAMA_TYPES + _LLAMITA_TYPES
_ALIASES = {"Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M", "Q3_K": "Q3_K_M"}
QUANTIZABLE_SOURCES = ("F16", "BF16", "F32")

# The tensor type most weights get for each file type (used only for the size estimate).
_MAIN_TENSOR_TYPE: dict[str, GGMLQuantizationType] = {
    "F32": GGMLQuantizationType.F32,
    "F16": GGMLQuantizationType.F16,
    "BF16": GGMLQuantizationType.BF16,
    "Q8_0": GGMLQuantizationType.Q8_0,
    "Q4_0": GGMLQuantizationType.Q4_0,
    "Q4_1": GGMLQuantizationType.Q4_1,
    "Q5_0": GGMLQuantizationType.Q5_0,
    "Q5_1": GGMLQuantizationType.Q5_1,
    "Q2_K": GGMLQuantizationType.Q2_K,
    "Q3_K_S": GGMLQuantizationType.Q3_K,
    "Q3_K_M": GGMLQuantizationType.Q3_K,
    "Q3_K_L": GGMLQuantizationType.Q3_K,
    "Q4_K_S": GGMLQuantizationType.Q4_K,
    "Q4_K_M": GGMLQuantizationType.Q4_K,
    "Q5_K_S": GGMLQuantizationType.Q5_K,
    "Q5_K_M": GGMLQuantizationType.Q5_K,
    "Q6_K": GGMLQuantizationType.Q6_K,
}
_FLOAT_TYPES = ("F32", "F16", "BF16")


class UnsupportedQuantizationError(ValueError):
    """Raised for an unknown target type or a source that is already quantized (a client error)."""


class QuantizeError(RuntimeError):
    """Raised when llama.cpp fails to quantize a model that passed the checks."""


def parse_quantization(name: str) -> str:
    """Canonical file-type name for a requested quantization (upper-cased first, as Ollama does)."""
    key = name.upper()
    key = _ALIASES.get(key, key)
    if key not in SUPPORTED_QUANTIZATIONS:
        supported = ", ".join(SUPPORTED_QUANTIZATIONS)
        raise UnsupportedQuantizationError(
            f"unsupported quantization type {name.upper()} - supported types are {supported}"
        )
    return key


def check_quantizable(file_type: str) -> None:
    """Reject a source GGUF whose ``GGUFInfo.file_type`` is not F16, BF16 or F32."""
    if file_type not in QUANTIZABLE_SOURCES:
        raise UnsupportedQuantizationError("quantization is only supported for F16, BF16 and F32 models")


def estimate_output_size(info: GGUFInfo, file_type: str) -> int:
    """Approximate size of the quantized file: 2-D float weights converted, everything else kept.

    llama.cpp keeps some tensors at higher precision (e.g. output.weight for K-quants) and falls
    back to other types for rows that do not fit the block size, so this is only a progress total.
    """
    target = _MAIN_TENSOR_TYPE[parse_quantization(file_type)]
    total = info.data_offset
    for t in info.tensors:
        size = t.n_bytes or 0
        if len(t.shape) >= 2 and t.type_name in _FLOAT_TYPES:
            # Rows that do not fit the block size get a fallback type; Q8_0 is a fair guess.
            kind = target if t.shape[0] % GGML_QUANT_SIZES[target][0] == 0 else GGMLQuantizationType.Q8_0
            block, type_size = GGML_QUANT_SIZES[kind]
            if t.shape[0] % block == 0:
                size = t.n_elements // block * type_size
        total += -(-size // 32) * 32
    return max(total, 1)


class _GrowthWatcher(threading.Thread):
    """Reports the size of a file being written until stopped; never reports the full total."""

    def __init__(self, path: Path, total: int, progress: Progress, interval: float) -> None:
        super().__init__(name="quantize-progress", daemon=True)
        self.path = path
        self.total = total
        self.progress = progress
        self.interval = interval
        self.stopped = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        last = 0
        while not self.stopped.wait(self.interval):
            try:
                size = self.path.stat().st_size
            except OSError:
                continue
            done = min(size, self.total - 1)
            if done > last:
                last = done
                try:
                    self.progress(done, self.total)
                except BaseException as exc:  # surfaced by quantize() once llama.cpp returns
                    self.error = exc
                    return

    def stop(self) -> None:
        self.stopped.set()
        self.join()


def quantize(
    src: Path,
    dst: Path,
    file_type: str,
    progress: Progress | None = None,
    *,
    nthread: int = 0,
    poll_interval: float = 0.1,
) -> None:
    """Write ``src`` quantized to ``file_type`` at ``dst`` (atomically replaced).

    Blocks until llama.cpp is done; run it in a worker thread from async code. ``nthread=0``
    lets llama.cpp use every core. An exception raised by ``progress`` (including the final
    100% report) discards the output; one raised while llama.cpp runs is re-raised once the
    uncancellable quantization has finished.
    """
    name = parse_quantization(file_type)
    src, dst = Path(src), Path(dst)
    info = read_gguf(src)
    check_quantizable(info.file_type)
    total = estimate_output_size(info, name)

    fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".partial", dir=dst.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    watcher: _GrowthWatcher | None = None
    try:
        if progress is not None:
            progress(0, total)
            watcher = _GrowthWatcher(tmp, total, progress, poll_interval)
            watcher.start()
        try:
            rc = quantize_file(src, tmp, FILE_TYPE_IDS[name], nthread)
        finally:
            if watcher is not None:
                watcher.stop()
        if rc != 0:
            raise QuantizeError(f"llama.cpp failed to quantize {src.name} to {name} (error {rc})")
        if watcher is not None and watcher.error is not None:
            raise watcher.error
        if progress is not None:
            progress(total, total)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
