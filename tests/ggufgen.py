"""Write tiny, random-weight but real GGUFs that llama.cpp can load.

Tests use them where SmolLM2 does not fit: FIM vocabularies, float sources for quantization,
other chat templates, embedding models with a pooling type, and model families whose memory
is not a plain KV cache. ``write_tiny_gguf`` writes the llama architecture: 2 layers, 64-wide
embeddings, 4 query / 2 KV heads, a 128-wide FFN and a 512-token context.
``write_tiny_mamba_gguf`` writes a recurrent Mamba (2 SSM layers) and ``write_tiny_lfm2_gguf``
a hybrid LFM2 (a short-convolution layer, then an attention layer: per-layer
``head_count_kv`` ``[0, 2]``, as LFM2's converter writes it). The vocabulary is a
SentencePiece ("llama") one: ``<unk> <s> </s>``, the 256 byte-fallback tokens, the FIM control
tokens (when ``fim``), any ``vocab_extra`` control tokens, then a few hundred letters and word
pieces.

Import it from tests as ``from ggufgen import write_tiny_gguf`` (``tests`` is on pytest's path).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
# Qwen2.5-Coder's repository-level markers (the language server's repo-level FIM format).
REPO_TOKENS = ("<|repo_name|>", "<|file_sep|>")
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
# llama.cpp's enum llama_pooling_type, as ``<arch>.pooling_type`` stores it.
POOLING = {"none": 0, "mean": 1, "cls": 2, "last": 3}

# Mamba: the inner size must be twice the embedding (llama.cpp supports no other expansion).
SSM_D_INNER = 2 * N_EMBD
SSM_D_STATE = 16
SSM_D_CONV = 4
SSM_DT_RANK = 4
LFM2_L_CACHE = 3

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
    pooling: str | None = None,
    causal: bool = True,
    repo_tokens: bool = False,
) -> Path:
    """Write the model to ``path`` and return it.

    ``fim`` adds the ``<|fim_*|>`` control tokens; ``fim_keys`` also records their ids under
    ``tokenizer.ggml.fim_{pre,suf,mid,pad}_token_id`` (off: only a vocab scan can find them).
    ``repo_tokens`` adds ``<|repo_name|>`` and ``<|file_sep|>`` (Qwen2.5-Coder's repo-level format).
    ``file_type`` is F16 or F32 (2-D weights in that type, norms always F32) or Q8_0.
    ``pooling`` (``mean``, ``cls``, ``last``, ``none``) writes ``llama.pooling_type``, which
    llama.cpp reads for every architecture: an embedding model. ``causal=False`` writes
    ``llama.attention.causal`` false (BERT-like, so a CLS vector depends on the whole input).
    """
    if file_type not in _FILE_TYPES:
        raise ValueError(f"file_type must be one of {sorted(_FILE_TYPES)}, not {file_type!r}")
    extra = (*vocab_extra, *(REPO_TOKENS if repo_tokens else ()))
    writer, tokens = _writer(path, "llama", name, fim, fim_keys, extra, chat_template, file_type)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_rope_dimension_count(HEAD_DIM)
    writer.add_rope_freq_base(10000.0)
    if pooling is not None:
        writer.add_pooling_type(gguf.PoolingType(POOLING[pooling]))
    if not causal:
        writer.add_causal_attention(False)
    rng = np.random.default_rng(seed)
    return _finish(writer, _weights(rng, len(tokens)), file_type)


def write_tiny_mamba_gguf(path: str | Path, *, seed: int = 0, name: str = "tiny-mamba") -> Path:
    """A recurrent model (``mamba``): all state is one recurrent cell per sequence, no KV cache."""
    writer, tokens = _writer(path, "mamba", name, False, False, (), None, "F32")
    writer.add_ssm_conv_kernel(SSM_D_CONV)
    writer.add_ssm_inner_size(SSM_D_INNER)
    writer.add_ssm_state_size(SSM_D_STATE)
    writer.add_ssm_time_step_rank(SSM_DT_RANK)
    rng = np.random.default_rng(seed)
    mat = _matrix(rng)
    w = {
        "token_embd.weight": mat(len(tokens), N_EMBD),
        "output_norm.weight": np.ones(N_EMBD, dtype=np.float32),
        "output.weight": mat(len(tokens), N_EMBD),
    }
    # ggml shapes are {columns, rows}; numpy's are (rows, columns).
    a = -np.tile(np.arange(1, SSM_D_STATE + 1, dtype=np.float32), (SSM_D_INNER, 1))  # A = -exp(A_log)
    for i in range(N_LAYERS):
        w |= {
            f"blk.{i}.attn_norm.weight": np.ones(N_EMBD, dtype=np.float32),
            f"blk.{i}.ssm_in.weight": mat(2 * SSM_D_INNER, N_EMBD, 0.1),
            f"blk.{i}.ssm_conv1d.weight": mat(SSM_D_INNER, SSM_D_CONV, 0.5),
            f"blk.{i}.ssm_conv1d.bias": np.zeros(SSM_D_INNER, dtype=np.float32),
            f"blk.{i}.ssm_x.weight": mat(SSM_DT_RANK + 2 * SSM_D_STATE, SSM_D_INNER, 0.1),
            f"blk.{i}.ssm_dt.weight": mat(SSM_D_INNER, SSM_DT_RANK, 0.1),
            f"blk.{i}.ssm_dt.bias": np.full(SSM_D_INNER, -2.0, dtype=np.float32),
            f"blk.{i}.ssm_a": a.copy(),
            f"blk.{i}.ssm_d": np.ones(SSM_D_INNER, dtype=np.float32),
            f"blk.{i}.ssm_out.weight": mat(N_EMBD, SSM_D_INNER, 0.1),
        }
    return _finish(writer, w, "F32")


def write_tiny_lfm2_gguf(path: str | Path, *, seed: int = 0, name: str = "tiny-lfm2") -> Path:
    """A hybrid model (``lfm2``): layer 0 a short convolution (recurrent), layer 1 attention."""
    writer, tokens = _writer(path, "lfm2", name, False, False, (), None, "F32")
    kv_heads = [0, N_HEAD_KV]  # 0 marks the recurrent layer, as LFM2's converter writes it
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_shortconv_l_cache(LFM2_L_CACHE)
    rng = np.random.default_rng(seed)
    mat = _matrix(rng)

    def norm(n: int = N_EMBD) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    w = {
        "token_embd.weight": mat(len(tokens), N_EMBD),
        "token_embd_norm.weight": norm(),  # LFM2's output norm keeps this (historical) name
        "output.weight": mat(len(tokens), N_EMBD),
    }
    for i, n_kv in enumerate(kv_heads):
        w |= {
            f"blk.{i}.attn_norm.weight": norm(),
            f"blk.{i}.ffn_norm.weight": norm(),
            f"blk.{i}.ffn_gate.weight": mat(N_FF, N_EMBD),
            f"blk.{i}.ffn_up.weight": mat(N_FF, N_EMBD),
            f"blk.{i}.ffn_down.weight": mat(N_EMBD, N_FF),
        }
        if n_kv == 0:
            w |= {
                f"blk.{i}.shortconv.conv.weight": mat(N_EMBD, LFM2_L_CACHE, 0.5),
                f"blk.{i}.shortconv.in_proj.weight": mat(3 * N_EMBD, N_EMBD, 0.1),
                f"blk.{i}.shortconv.out_proj.weight": mat(N_EMBD, N_EMBD, 0.1),
            }
        else:
            w |= {
                f"blk.{i}.attn_q_norm.weight": norm(HEAD_DIM),
                f"blk.{i}.attn_k_norm.weight": norm(HEAD_DIM),
                f"blk.{i}.attn_q.weight": mat(N_HEAD * HEAD_DIM, N_EMBD),
                f"blk.{i}.attn_k.weight": mat(n_kv * HEAD_DIM, N_EMBD),
                f"blk.{i}.attn_v.weight": mat(n_kv * HEAD_DIM, N_EMBD),
                f"blk.{i}.attn_output.weight": mat(N_EMBD, N_HEAD * HEAD_DIM),
            }
    return _finish(writer, w, "F32")


def _matrix(rng: np.random.Generator) -> Callable[..., np.ndarray]:
    def mat(rows: int, cols: int, scale: float = 0.02) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) * scale).astype(np.float32)

    return mat


def _writer(
    path: str | Path,
    arch: str,
    name: str,
    fim: bool,
    fim_keys: bool,
    vocab_extra: Sequence[str],
    chat_template: str | None,
    file_type: str,
) -> tuple[gguf.GGUFWriter, list[str]]:
    """A writer with the metadata every tiny model shares: sizes, vocabulary, template."""
    tokens, scores, types = _vocab(fim, vocab_extra)
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name(name)
    writer.add_type("model")
    writer.add_file_type(_FILE_TYPES[file_type])
    writer.add_block_count(N_LAYERS)
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_layer_norm_rms_eps(1e-5)
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
    return writer, tokens


def _finish(writer: gguf.GGUFWriter, weights: dict[str, np.ndarray], file_type: str) -> Path:
    for tensor_name, data in weights.items():
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
    assert writer.path is not None
    return writer.path
