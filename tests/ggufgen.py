"""Write tiny, random-weight but real llama-architecture GGUFs that llama.cpp can load.

Tests use them where SmolLM2 does not fit: FIM vocabularies, float sources for quantization,
other chat templates. The model has 2 layers, 64-wide embeddings, 4 query / 2 KV heads, a
128-wide FFN and a 512-token context. The vocabulary is a SentencePiece ("llama") one:
``<unk> <s> </s>``, the 256 byte-fallback tokens, the FIM control tokens (when ``fim``), any
``vocab_extra`` control tokens, then a few hundred letters and word pieces.

Import it from tests as ``from ggufgen import write_tiny_gguf`` (``tests`` is on pytest's path).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import gguf
import numpy as np

N_LAYERS = 2
N_EMBD = 64
N_HEAD = 4
N_HEAD_KV = 2
N_FF = 128
N_CTX = 512
HEAD_DIM = N_EMBD // N_HEAD

FIM_TOKENS = ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>", "<|endoftext|>")
_WORDS = (
    "def",
    "return",
    "class",
    "import",
    "from",
    "self",
    "print",
    "hello",
    "world",
    "the",
    "and",
    "for",
    "in",
    "if",
    "else",
    "add",
    "int",
    "str",
)
_FILE_TYPES = {"F32": 0, "F16": 1, "Q8_0": 7}

_NORMAL = gguf.TokenType.NORMAL
_CONTROL = gguf.TokenType.CONTROL


def _vocab(fim: bool, extra: Sequence[str]) -> tuple[list[str], list[float], list[int]]:
    tokens = ["<unk>", "<s>", "</s>"]
    types = [gguf.TokenType.UNKNOWN, _CONTROL, _CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    for text in (*(FIM_TOKENS if fim else ()), *extra):
        if text not in tokens:
            tokens.append(text)
            types.append(_CONTROL)
    pieces = ["▁", *"abcdefghijklmnopqrstuvwxyz", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ", *"0123456789"]
    pieces += list("()[]{}:;,.=+-*/<>_'\"#")
    pieces += [f"▁{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    pieces += [f"▁{w}" for w in _WORDS] + list(_WORDS)
    for piece in pieces:
        if piece not in tokens:
            tokens.append(piece)
            types.append(_NORMAL)
    # SentencePiece scores: longer pieces win merges; specials and bytes score 0.
    scores = [0.0 if t != _NORMAL else float(len(tok)) - 10.0 for tok, t in zip(tokens, types, strict=True)]
    return tokens, scores, [int(t) for t in types]


def _weights(rng: np.random.Generator, n_vocab: int) -> dict[str, np.ndarray]:
    def mat(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) * 0.02).astype(np.float32)

    def norm() -> np.ndarray:
        return np.ones(N_EMBD, dtype=np.float32)

    w = {
        "token_embd.weight": mat(n_vocab, N_EMBD),
        "output_norm.weight": norm(),
        "output.weight": mat(n_vocab, N_EMBD),
    }
    for i in range(N_LAYERS):
        w |= {
            f"blk.{i}.attn_norm.weight": norm(),
            f"blk.{i}.attn_q.weight": mat(N_HEAD * HEAD_DIM, N_EMBD),
            f"blk.{i}.attn_k.weight": mat(N_HEAD_KV * HEAD_DIM, N_EMBD),
            f"blk.{i}.attn_v.weight": mat(N_HEAD_KV * HEAD_DIM, N_EMBD),
            f"blk.{i}.attn_output.weight": mat(N_EMBD, N_HEAD * HEAD_DIM),
            f"blk.{i}.ffn_norm.weight": norm(),
            f"blk.{i}.ffn_gate.weight": mat(N_FF, N_EMBD),
            f"blk.{i}.ffn_up.weight": mat(N_FF, N_EMBD),
            f"blk.{i}.ffn_down.weight": mat(N_EMBD, N_FF),
        }
    return w


def write_tiny_gguf(
    path: str | Path,
    *,
    fim: bool = True,
    fim_keys: bool = True,
    chat_template: str | None = None,
    file_type: str = "F16",
    vocab_extra: Sequence[str] = (),
    seed: int = 0,
    name: str = "tiny-test",
) -> Path:
    """Write the model to ``path`` and return it.

    ``fim`` adds the ``<|fim_*|>`` control tokens; ``fim_keys`` also records their ids under
    ``tokenizer.ggml.fim_{pre,suf,mid,pad}_token_id`` (off: only a vocab scan can find them).
    ``file_type`` is F16 or F32 (2-D weights in that type, norms always F32) or Q8_0.
    """
    if file_type not in _FILE_TYPES:
        raise ValueError(f"file_type must be one of {sorted(_FILE_TYPES)}, not {file_type!r}")
    path = Path(path)
    tokens, scores, types = _vocab(fim, vocab_extra)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_type("model")
    writer.add_file_type(_FILE_TYPES[file_type])
    writer.add_block_count(N_LAYERS)
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(HEAD_DIM)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    if fim and fim_keys:
        ids = {text: tokens.index(text) for text in FIM_TOKENS}
        writer.add_uint32(gguf.Keys.Tokenizer.FIM_PRE_ID, ids["<|fim_prefix|>"])
        writer.add_uint32(gguf.Keys.Tokenizer.FIM_SUF_ID, ids["<|fim_suffix|>"])
        writer.add_uint32(gguf.Keys.Tokenizer.FIM_MID_ID, ids["<|fim_middle|>"])
        writer.add_uint32(gguf.Keys.Tokenizer.FIM_PAD_ID, ids["<|fim_pad|>"])
    if chat_template is not None:
        writer.add_chat_template(chat_template)

    rng = np.random.default_rng(seed)
    for tensor_name, data in _weights(rng, len(tokens)).items():
        if data.ndim == 1 or file_type == "F32":
            writer.add_tensor(tensor_name, data)
        elif file_type == "F16":
            writer.add_tensor(tensor_name, data.astype(np.float16))
        else:
            qtype = gguf.GGMLQuantizationType.Q8_0
            writer.add_tensor(tensor_name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
