from __future__ import annotations

import time
from pathlib import Path

import gguf
import numpy as np
import pytest

from ggufgen import write_tiny_gguf
from llamita.server.model.ggufinfo import read_gguf
from llamita.server.model.quantize import (
    SUPPORTED_QUANTIZATIONS,
    QuantizeError,
    UnsupportedQuantizationError,
    check_quantizable,
    estimate_output_size,
    parse_quantization,
    quantize,
)

SUPPORTED_MESSAGE = (
    "supported types are F32, F16, Q4_K_S, Q4_K_M, Q8_0, BF16, Q4_0, Q4_1, Q5_0, Q5_1, "
    "Q5_K_S, Q5_K_M, Q6_K, Q3_K_S, Q3_K_M, Q3_K_L, Q2_K"
)
SOURCE_MESSAGE = "quantization is only supported for F16, BF16 and F32 models"


@pytest.fixture(scope="module")
def f16_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("src") / "tiny-f16.gguf", file_type="F16")


PARSE_CASES = [
    ("q4_k_m", "Q4_K_M"),
    ("Q4_K_S", "Q4_K_S"),
    ("q4_k", "Q4_K_M"),
    ("Q8_0", "Q8_0"),
    ("f16", "F16"),
    ("F32", "F32"),
    ("bf16", "BF16"),
    ("q4_0", "Q4_0"),
    ("Q4_1", "Q4_1"),
    ("q5_0", "Q5_0"),
    ("q5_1", "Q5_1"),
    ("q5_k", "Q5_K_M"),
    ("Q5_K_S", "Q5_K_S"),
    ("q6_k", "Q6_K"),
    ("q3_k", "Q3_K_M"),
    ("q3_k_l", "Q3_K_L"),
    ("q2_k", "Q2_K"),
]


@pytest.mark.parametrize(("name", "expected"), PARSE_CASES, ids=[c[0] for c in PARSE_CASES])
def test_parse_quantization(name: str, expected: str) -> None:
    assert parse_quantization(name) == expected
    assert expected in SUPPORTED_QUANTIZATIONS


REJECT_CASES = [
    ("q4_2", "Q4_2"),
    ("", ""),
    ("iq2_xxs", "IQ2_XXS"),
    ("q8", "Q8"),
    (" q4_0", " Q4_0"),  # Ollama upper-cases but does not trim
    ("Q4_K_M_X", "Q4_K_M_X"),
]


@pytest.mark.parametrize(("name", "shown"), REJECT_CASES, ids=[c[0] or "empty" for c in REJECT_CASES])
def test_parse_quantization_rejects(name: str, shown: str) -> None:
    with pytest.raises(UnsupportedQuantizationError) as excinfo:
        parse_quantization(name)
    assert str(excinfo.value) == f"unsupported quantization type {shown} - {SUPPORTED_MESSAGE}"


@pytest.mark.parametrize("file_type", ["F16", "BF16", "F32"])
def test_check_quantizable_accepts(file_type: str) -> None:
    check_quantizable(file_type)


@pytest.mark.parametrize("file_type", ["Q4_1", "Q8_0", "Q4_K_M", "unknown", "f16"])
def test_check_quantizable_rejects(file_type: str) -> None:
    with pytest.raises(UnsupportedQuantizationError, match=f"^{SOURCE_MESSAGE}$"):
        check_quantizable(file_type)


def test_estimate_output_size(f16_gguf: Path) -> None:
    info = read_gguf(f16_gguf)
    size = f16_gguf.stat().st_size
    assert estimate_output_size(info, "F16") == pytest.approx(size, rel=0.01)
    assert estimate_output_size(info, "F32") == pytest.approx(2 * size, rel=0.05)
    assert estimate_output_size(info, "Q4_0") < estimate_output_size(info, "Q8_0") < size


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


@pytest.mark.model
@pytest.mark.parametrize(("file_type", "tensor_type"), [("Q8_0", "Q8_0"), ("q4_0", "Q4_0")])
def test_quantize_f16(tmp_path: Path, f16_gguf: Path, file_type: str, tensor_type: str) -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    dst = tmp_path / "out.gguf"
    calls: list[tuple[int, int]] = []
    quantize(f16_gguf, dst, file_type, lambda done, total: calls.append((done, total)), poll_interval=0.001)

    info = read_gguf(dst)
    assert info.file_type == parse_quantization(file_type)
    assert info.parameter_count == read_gguf(f16_gguf).parameter_count
    types = {t.name: t.type_name for t in info.tensors}
    assert types["blk.0.ffn_up.weight"] == tensor_type
    assert types["blk.0.attn_norm.weight"] == "F32"
    assert dst.stat().st_size < f16_gguf.stat().st_size
    assert _leftovers(tmp_path) == []

    total = calls[0][1]
    assert calls[0] == (0, total)
    assert calls[-1] == (total, total)
    assert all(t == total for _, t in calls)
    done = [d for d, _ in calls]
    assert done == sorted(done)
    assert all(d < total for d in done[:-1])

    # logits_all: without it llama-cpp-python never fills `scores` (the array is uninitialised).
    llm = llama_cpp.Llama(model_path=str(dst), n_ctx=128, logits_all=True, verbose=False)
    try:
        llm.eval(llm.tokenize(b"def add(a, b):"))
        assert np.isfinite(llm.scores[llm.n_tokens - 1]).all()
    finally:
        llm.close()


@pytest.mark.model
def test_quantize_replaces_existing_destination(tmp_path: Path, f16_gguf: Path) -> None:
    dst = tmp_path / "out.gguf"
    dst.write_bytes(b"old contents")
    quantize(f16_gguf, dst, "Q8_0")
    assert read_gguf(dst).file_type == "Q8_0"
    assert _leftovers(tmp_path) == []


@pytest.mark.model
def test_quantize_rejects_quantized_source(tmp_path: Path, smollm2_gguf: Path) -> None:
    dst = tmp_path / "out.gguf"
    with pytest.raises(UnsupportedQuantizationError, match=f"^{SOURCE_MESSAGE}$"):
        quantize(smollm2_gguf, dst, "Q8_0")
    assert not dst.exists()
    assert _leftovers(tmp_path) == []


@pytest.mark.model
def test_quantize_rejects_q8_source(tmp_path: Path) -> None:
    src = write_tiny_gguf(tmp_path / "q8.gguf", file_type="Q8_0")
    with pytest.raises(UnsupportedQuantizationError, match=f"^{SOURCE_MESSAGE}$"):
        quantize(src, tmp_path / "out.gguf", "Q4_0")
    assert not (tmp_path / "out.gguf").exists()


@pytest.mark.model
def test_quantize_rejects_unknown_type(tmp_path: Path, f16_gguf: Path) -> None:
    calls: list[tuple[int, int]] = []
    with pytest.raises(UnsupportedQuantizationError, match=r"^unsupported quantization type Q9_9 - "):
        quantize(f16_gguf, tmp_path / "out.gguf", "q9_9", lambda d, t: calls.append((d, t)))
    assert calls == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.model
def test_quantize_llama_cpp_failure_cleans_up(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    src = tmp_path / "alien.gguf"
    writer = gguf.GGUFWriter(str(src), "no-such-architecture")
    writer.add_file_type(1)
    writer.add_tensor("blk.0.weight", np.zeros((32, 32), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(QuantizeError, match=r"failed to quantize alien\.gguf to Q8_0"):
        quantize(src, out / "alien-q8.gguf", "Q8_0")
    assert list(out.iterdir()) == []


@pytest.mark.model
def test_quantize_progress_error_discards_output(tmp_path: Path, f16_gguf: Path) -> None:
    class Stop(Exception):
        pass

    def progress(done: int, total: int) -> None:
        if done > 0:
            raise Stop

    dst = tmp_path / "out.gguf"
    with pytest.raises(Stop):
        quantize(f16_gguf, dst, "F32", progress, poll_interval=0.0005)
    assert not dst.exists()
    assert _leftovers(tmp_path) == []


def test_growth_watcher_reports_growth_below_total(tmp_path: Path) -> None:
    from llamita.server.model.quantize import _GrowthWatcher

    target = tmp_path / "growing"
    target.write_bytes(b"")
    calls: list[tuple[int, int]] = []
    watcher = _GrowthWatcher(target, 100, lambda d, t: calls.append((d, t)), interval=0.001)
    watcher.start()
    try:
        for size in (10, 60, 150):
            target.write_bytes(b"x" * size)
            deadline = time.monotonic() + 5
            while (not calls or calls[-1][0] < min(size, 99)) and time.monotonic() < deadline:
                time.sleep(0.001)
    finally:
        watcher.stop()
    assert calls[-1] == (99, 100)  # clamped: only quantize() reports the full total
    done = [d for d, _ in calls]
    assert done == sorted(set(done)) and done[0] >= 10
    assert not watcher.is_alive()
