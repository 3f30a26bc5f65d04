from __future__ import annotations

import json
import struct
from pathlib import Path

import gguf
import pytest

from ggufgen import FIM_TOKENS, write_tiny_gguf
from llamita.server.model.ggufinfo import (
    CorruptGGUFError,
    FimTokens,
    GGUFError,
    NotGGUFError,
    fim_tokens,
    human_number,
    is_gguf,
    model_info,
    read_gguf,
)

SMOLLM2_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("tiny") / "tiny.gguf")


def _raw_gguf(path: Path, kvs: list[tuple[str, int, bytes]], *, endian: str = "<", version: int = 3) -> Path:
    """Hand-built header (no tensors) for cases GGUFWriter cannot produce."""

    def string(s: str) -> bytes:
        data = s.encode()
        return struct.pack(endian + "Q", len(data)) + data

    body = b"GGUF" + struct.pack(endian + "IQQ", version, 0, len(kvs))
    for key, vtype, payload in kvs:
        body += string(key) + struct.pack(endian + "I", vtype) + payload
    path.write_bytes(body)
    return path


# --- human_number -------------------------------------------------------------------------------

HUMAN_NUMBER_CASES = [
    (0, "0"),
    (999, "999"),
    (1000, "1K"),
    (1001, "1K"),
    (1500, "2K"),  # half-even on the exact value, like Go's %.0f
    (2500, "2K"),
    (999_999, "1000K"),
    (1_000_000, "1M"),
    (125_000_000, "125M"),
    (134_515_008, "134.52M"),
    (500_500_000, "500.50M"),
    (500_550_000, "500.55M"),
    (999_999_999, "1000.00M"),
    (1_000_000_000, "1B"),
    (2_800_000_000, "2.8B"),
    (2_850_000_000, "2.9B"),
    (7_241_732_096, "7.2B"),
    (8_030_261_248, "8.0B"),
    (1_000_000_000_000, "1000B"),
]


@pytest.mark.parametrize(
    ("n", "expected"), HUMAN_NUMBER_CASES, ids=[c[1] + "-" + str(c[0]) for c in HUMAN_NUMBER_CASES]
)
def test_human_number(n: int, expected: str) -> None:
    assert human_number(n) == expected


# --- SmolLM2 (real file) ------------------------------------------------------------------------


def test_smollm2_properties(smollm2_gguf: Path) -> None:
    info = read_gguf(smollm2_gguf)
    assert info.version == 3
    assert info.architecture == "llama"
    assert info.kind == "model"
    assert info.file_type == "Q4_1"
    assert info.parameter_count == 134_515_008
    assert human_number(info.parameter_count) == "134.52M"
    assert info.context_length == 8192
    assert info.embedding_length == 576
    assert info.block_count == 30
    assert not info.is_adapter
    assert not info.is_projector
    assert info.chat_template is not None and "<|im_start|>" in info.chat_template
    assert len(info.tokens) == 49152
    assert info.tokens[:3] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    assert len(info.tensors) == 272
    embd = info.tensors[0]
    assert (embd.name, embd.type_name, embd.shape) == ("token_embd.weight", "Q8_0", (576, 49152))
    assert info.data_offset % 32 == 0
    assert info.kv_types["llama.context_length"] == "uint32"
    assert info.kv_types["tokenizer.ggml.tokens"] == "array[string]"
    assert fim_tokens(info) is None


def test_smollm2_model_info(smollm2_gguf: Path) -> None:
    info = read_gguf(smollm2_gguf)
    shown = model_info(info)
    assert "general.name" not in shown
    assert "tokenizer.chat_template" not in shown
    assert list(shown) == sorted(shown)
    assert shown["general.parameter_count"] == 134_515_008
    assert shown["general.architecture"] == "llama"
    assert shown["llama.context_length"] == 8192
    assert shown["llama.attention.layer_norm_rms_epsilon"] == 1e-05  # float32 printed shortest
    # Ollama decodes arrays with a maximum size of 0: every non-empty array is null.
    for key in (
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.merges",
        "tokenizer.ggml.token_type",
        "general.languages",
    ):
        assert shown[key] is None, key
    json.dumps(shown)

    verbose = model_info(info, verbose=True)
    assert verbose["general.languages"] == ["en"]
    assert len(verbose["tokenizer.ggml.tokens"]) == 49152  # type: ignore[arg-type]
    assert verbose.keys() == shown.keys()


# --- generated GGUFs ----------------------------------------------------------------------------


@pytest.mark.parametrize("file_type", ["F16", "F32", "Q8_0"])
def test_generated_file_type_and_counts(tmp_path: Path, file_type: str) -> None:
    info = read_gguf(write_tiny_gguf(tmp_path / "m.gguf", file_type=file_type))
    assert info.file_type == file_type
    assert info.architecture == "llama"
    assert info.context_length == 512
    assert info.embedding_length == 64
    n_vocab = len(info.tokens)
    per_layer = 64 + 64 * 64 + 2 * 32 * 64 + 64 * 64 + 64 + 3 * 128 * 64
    assert info.parameter_count == 2 * n_vocab * 64 + 64 + 2 * per_layer
    types = {t.name: t.type_name for t in info.tensors}
    assert types["blk.0.attn_norm.weight"] == "F32"
    assert types["blk.0.ffn_up.weight"] == file_type


def test_matches_gguf_reader(tiny_gguf: Path) -> None:
    """Cross-check the fast parser against the gguf package's reference reader."""
    info = read_gguf(tiny_gguf)
    reader = gguf.GGUFReader(tiny_gguf)
    expected = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    assert info.kv.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, float) or (isinstance(value, list) and value and isinstance(value[0], float)):
            assert info.kv[key] == pytest.approx(value, rel=1e-6), key
        else:
            assert info.kv[key] == value, key
    assert [(t.name, t.type_name, t.shape, t.offset) for t in info.tensors] == [
        (t.name, t.tensor_type.name, tuple(int(d) for d in t.shape), int(t.data_offset) - reader.data_offset)
        for t in reader.tensors
    ]
    assert info.data_offset == reader.data_offset


def test_model_info_overrides_stored_parameter_count(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "m.gguf")
    info = read_gguf(path)
    info.kv["general.parameter_count"] = 42
    assert model_info(info)["general.parameter_count"] == info.parameter_count != 42


def test_model_info_arrays(tmp_path: Path) -> None:
    path = _raw_gguf(
        tmp_path / "a.gguf",
        [
            ("general.architecture", 8, struct.pack("<Q", 5) + b"llama"),
            ("t.empty", 9, struct.pack("<IQ", 4, 0)),
            ("t.floats", 9, struct.pack("<IQff", 6, 2, 0.1, 0.25)),
            ("t.short", 9, struct.pack("<IQii", 5, 2, -1, 7)),
        ],
    )
    info = read_gguf(path)
    assert info.kv["t.short"] == [-1, 7]
    assert model_info(info) == {
        "general.architecture": "llama",
        "general.parameter_count": 0,
        "t.empty": [],
        "t.floats": None,
        "t.short": None,
    }
    assert model_info(info, verbose=True)["t.floats"] == [0.1, 0.25]


def test_big_endian_header(tmp_path: Path) -> None:
    path = _raw_gguf(
        tmp_path / "be.gguf",
        [
            ("general.architecture", 8, struct.pack(">Q", 5) + b"llama"),
            ("llama.context_length", 4, struct.pack(">I", 4096)),
            ("general.file_type", 4, struct.pack(">I", 15)),
        ],
        endian=">",
    )
    info = read_gguf(path)
    assert (info.architecture, info.context_length, info.file_type) == ("llama", 4096, "Q4_K_M")


def _kv_gguf(path: Path, arch: str, kv: dict[str, object]) -> Path:
    writer = gguf.GGUFWriter(str(path), arch)
    for key, value in kv.items():
        if isinstance(value, bool):
            writer.add_bool(key, value)
        elif isinstance(value, int):
            writer.add_uint32(key, value)
        elif isinstance(value, list):
            writer.add_array(key, value)
        else:
            writer.add_string(key, str(value))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


KIND_CASES = [
    ("model", "llama", {"llama.block_count": 2}, (False, False, "model")),
    ("adapter", "llama", {"general.type": "adapter"}, (True, False, "adapter")),
    ("mmproj-type", "clip", {"general.type": "mmproj"}, (False, True, "mmproj")),
    ("clip-vision", "clip", {"clip.has_vision_encoder": True}, (False, True, "model")),
    ("clip-audio", "clip", {"clip.has_audio_encoder": True}, (False, True, "model")),
    ("clip-no-encoder", "clip", {"clip.has_vision_encoder": False}, (False, False, "model")),
    ("vision-only", "mllama", {"mllama.vision.block_count": 8}, (False, True, "model")),
    (
        "vision-with-text",
        "mllama",
        {"mllama.vision.block_count": 8, "mllama.block_count": 4},
        (False, False, "model"),
    ),
]


@pytest.mark.parametrize(
    ("arch", "kv", "expected"), [c[1:] for c in KIND_CASES], ids=[c[0] for c in KIND_CASES]
)
def test_adapter_and_projector(
    tmp_path: Path, arch: str, kv: dict[str, object], expected: tuple[bool, bool, str]
) -> None:
    info = read_gguf(_kv_gguf(tmp_path / "k.gguf", arch, kv))
    assert (info.is_adapter, info.is_projector, info.kind) == expected


def test_missing_file_type_is_unknown(tmp_path: Path) -> None:
    assert read_gguf(_kv_gguf(tmp_path / "k.gguf", "llama", {})).file_type == "unknown"
    assert read_gguf(_kv_gguf(tmp_path / "k2.gguf", "llama", {"general.file_type": 4})).file_type == "unknown"


# --- rejected input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"", b"GG", b"not a model at all\n", b"PK\x03\x04zipfile", b"GGML" + b"\0" * 40],
    ids=["empty", "short", "text", "zip", "ggml-magic"],
)
def test_not_gguf(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "blob"
    path.write_bytes(content)
    assert not is_gguf(path)
    with pytest.raises(NotGGUFError, match=r"^supplied file was not in GGUF format$"):
        read_gguf(path)


def _truncate_at(source: Path, dest: Path, where: str) -> Path:
    data = source.read_bytes()
    info = read_gguf(source)
    cut = {
        "header": 20,
        "first-key": 30,
        "vocab": data.index(b"<0x7F>") + 3,
        "tensor-infos": data.index(b"blk.1.ffn_up.weight"),
        "tensor-data": info.data_offset + 1000,
        "last-byte": len(data) - 1,
    }[where]
    dest.write_bytes(data[:cut])
    return dest


@pytest.mark.parametrize(
    "where", ["header", "first-key", "vocab", "tensor-infos", "tensor-data", "last-byte"]
)
def test_truncated(tmp_path: Path, tiny_gguf: Path, where: str) -> None:
    path = _truncate_at(tiny_gguf, tmp_path / "cut.gguf", where)
    assert is_gguf(path)
    with pytest.raises(CorruptGGUFError, match=r"truncated|exceeds file size"):
        read_gguf(path)


CORRUPT_CASES = [
    ("version-1", [], 1, "unsupported GGUF version 1"),
    ("version-4", [], 4, "unsupported GGUF version 4"),
    ("bad-value-type", [("k", 99, b"")], 3, "invalid value type 99"),
    ("bad-array-type", [("k", 9, struct.pack("<IQ", 42, 1))], 3, "invalid array type 42"),
    ("huge-string", [("k", 8, struct.pack("<Q", 1 << 40))], 3, "truncated"),
    ("huge-array", [("k", 9, struct.pack("<IQ", 8, 1 << 40))], 3, "truncated"),
]


@pytest.mark.parametrize(
    ("kvs", "version", "message"), [c[1:] for c in CORRUPT_CASES], ids=[c[0] for c in CORRUPT_CASES]
)
def test_corrupt_header(
    tmp_path: Path, kvs: list[tuple[str, int, bytes]], version: int, message: str
) -> None:
    path = _raw_gguf(tmp_path / "bad.gguf", kvs, version=version)
    with pytest.raises(CorruptGGUFError, match=message) as excinfo:
        read_gguf(path)
    assert isinstance(excinfo.value, GGUFError)


# --- FIM detection ------------------------------------------------------------------------------

FIM_CASES = [
    (
        "keys",
        {"fim": True},
        FimTokens(
            "<|fim_prefix|>",
            "<|fim_suffix|>",
            "<|fim_middle|>",
            "psm",
            "qwen",
            ("<|endoftext|>", "<|fim_pad|>"),
        ),
    ),
    (
        "vocab-scan",
        {"fim": True, "fim_keys": False},
        FimTokens(
            "<|fim_prefix|>",
            "<|fim_suffix|>",
            "<|fim_middle|>",
            "psm",
            "qwen",
            ("<|endoftext|>", "<|fim_pad|>"),
        ),
    ),
    (
        "starcoder",
        {
            "fim": False,
            "vocab_extra": ["<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>", "<file_sep>"],
        },
        FimTokens(
            "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "psm", "starcoder", ("<fim_pad>", "<file_sep>")
        ),
    ),
    (
        "codegemma",
        {
            "fim": False,
            "vocab_extra": ["<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|file_separator|>"],
        },
        FimTokens(
            "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "psm", "codegemma", ("<|file_separator|>",)
        ),
    ),
    (
        "deepseek",
        {
            "fim": False,
            "vocab_extra": [
                "<｜fim▁hole｜>",
                "<｜fim▁begin｜>",
                "<｜fim▁end｜>",
                "<|EOT|>",
                "<｜end▁of▁sentence｜>",
            ],
        },
        FimTokens(
            "<｜fim▁begin｜>",
            "<｜fim▁hole｜>",
            "<｜fim▁end｜>",
            "psm",
            "deepseek",
            ("<|EOT|>", "<｜end▁of▁sentence｜>"),
        ),
    ),
    (
        "codellama",
        {"fim": False, "vocab_extra": ["▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"]},
        FimTokens("<PRE>", "<SUF>", "<MID>", "psm", "codellama", ("<EOT>",)),
    ),
    (
        "codestral",
        {"fim": False, "vocab_extra": ["[INST]", "[PREFIX]", "[MIDDLE]", "[SUFFIX]"]},
        FimTokens("[PREFIX]", "[SUFFIX]", "[MIDDLE]", "spm", "codestral", ()),
    ),
    (
        "codestral-no-middle",
        {"fim": False, "vocab_extra": ["[SUFFIX]", "[PREFIX]"]},
        FimTokens("[PREFIX]", "[SUFFIX]", None, "spm", "codestral", ()),
    ),
]


@pytest.mark.parametrize(("kwargs", "expected"), [c[1:] for c in FIM_CASES], ids=[c[0] for c in FIM_CASES])
def test_fim_tokens(tmp_path: Path, kwargs: dict[str, object], expected: FimTokens) -> None:
    info = read_gguf(write_tiny_gguf(tmp_path / "f.gguf", **kwargs))  # type: ignore[arg-type]
    assert fim_tokens(info) == expected


NO_FIM_CASES = [
    ("none", {"fim": False}),
    ("prefix-suffix-only", {"fim": False, "vocab_extra": ["<fim_prefix>", "<fim_suffix>"]}),
    ("middle-missing-deepseek", {"fim": False, "vocab_extra": ["<｜fim▁begin｜>", "<｜fim▁hole｜>"]}),
    ("suffix-only-codestral", {"fim": False, "vocab_extra": ["[SUFFIX]"]}),
]


@pytest.mark.parametrize("kwargs", [c[1] for c in NO_FIM_CASES], ids=[c[0] for c in NO_FIM_CASES])
def test_no_fim_tokens(tmp_path: Path, kwargs: dict[str, object]) -> None:
    assert fim_tokens(read_gguf(write_tiny_gguf(tmp_path / "f.gguf", **kwargs))) is None  # type: ignore[arg-type]


def test_fim_legacy_keys_and_unknown_texts(tmp_path: Path) -> None:
    tokens = ["<unk>", "<pre>", "<suf>", "<mid>", "a"]
    kv: dict[str, object] = {
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.prefix_token_id": 1,
        "tokenizer.ggml.suffix_token_id": 2,
        "tokenizer.ggml.middle_token_id": 3,
    }
    info = read_gguf(_kv_gguf(tmp_path / "legacy.gguf", "llama", kv))
    assert fim_tokens(info) == FimTokens("<pre>", "<suf>", "<mid>", "psm", "generic", ())
    kv["tokenizer.ggml.middle_token_id"] = 99  # out of range: no complete triple
    assert fim_tokens(read_gguf(_kv_gguf(tmp_path / "legacy2.gguf", "llama", kv))) is None


@pytest.mark.model
def test_generated_gguf_loads_in_llama_cpp(tiny_gguf: Path) -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    info = read_gguf(tiny_gguf)
    fim = fim_tokens(info)
    assert fim is not None
    llm = llama_cpp.Llama(model_path=str(tiny_gguf), n_ctx=128, verbose=False)
    try:
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        ids = llm.tokenize(f"{fim.prefix}def add".encode(), add_bos=False, special=True)
        assert ids[0] == info.kv["tokenizer.ggml.fim_pre_token_id"] == llama_cpp.llama_vocab_fim_pre(vocab)
        assert ids[0] == info.tokens.index(FIM_TOKENS[0])
        assert llama_cpp.llama_vocab_fim_suf(vocab) == info.tokens.index(fim.suffix)
        assert llama_cpp.llama_vocab_fim_mid(vocab) == info.tokens.index(fim.middle or "")
        assert llm.n_vocab() == len(info.tokens)
        llm.eval(llm.tokenize(b"def add(a, b):"))
        assert llm.n_tokens > 0
    finally:
        llm.close()
