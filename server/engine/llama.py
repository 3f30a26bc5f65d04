"""Thin owners of llama.cpp objects (model, context, batch) over llama-cpp-python's ctypes API.

Only ``engine/`` touches ctypes, and inside it only this module and ``sampling`` do.  We
use the low-level API because the high-level ``Llama`` class is single-sequence and its
``suffix=`` FIM path uses token id 0.  One context belongs to one thread (the engine's);
tokenization only needs the vocab and is thread-safe.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import llama_cpp as ll

from llamita.server.options import DEFAULT_NUM_CTX

from .cpus import physical_cores

log = logging.getLogger("llamita.llama")

_init_lock = threading.Lock()
_NO_ABORT = ll.ggml_abort_callback()  # a NULL callback: nothing polls
_initialised = False


@ll.llama_log_callback
def _log_callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    """Route llama.cpp's chatter to logging (debug) instead of stderr."""
    if log.isEnabledFor(logging.DEBUG) and text:
        log.debug("%s", text.decode("utf-8", "replace").rstrip())


def init_backend() -> None:
    """Initialise llama.cpp once per process and silence its logging."""
    global _initialised
    with _init_lock:
        if not _initialised:
            ll.llama_log_set(_log_callback, ctypes.c_void_p(0))
            ll.llama_backend_init()
            _initialised = True


class LlamaError(RuntimeError):
    """Raised when llama.cpp refuses to load a model or create a context."""


def supports_gpu() -> bool:
    init_backend()
    return bool(ll.llama_supports_gpu_offload())


@dataclass(frozen=True)
class LoadOptions:
    """What must match for a loaded model to be reused (Ollama's runner options)."""

    n_gpu_layers: int = 0
    use_mmap: bool = True
    lora_paths: tuple[str, ...] = ()


# OLLAMA_KV_CACHE_TYPE names → ggml types (K and V alike, as in Ollama).
KV_CACHE_TYPES: dict[str, int] = {
    "f16": ll.GGML_TYPE_F16,
    "q8_0": ll.GGML_TYPE_Q8_0,
    "q4_0": ll.GGML_TYPE_Q4_0,
}


@dataclass(frozen=True)
class ContextOptions:
    """A context's shape.  ``n_ctx`` is the cells running requests may use (``n_ctx_seq`` ×
    parallel: the engine runs ``n_ctx // n_ctx_seq`` requests at once); ``n_seq_max`` - parallel
    more sequences keep idle editors' KV.  In a unified cache (the default) all sequences share
    those ``n_ctx`` cells; with ``kv_unified=False`` each sequence has ``n_ctx_seq`` cells of its
    own, so the context allocates :attr:`cells` = ``n_ctx_seq × n_seq_max``."""

    n_ctx: int = DEFAULT_NUM_CTX
    n_ctx_seq: int = DEFAULT_NUM_CTX
    n_batch: int = 512
    n_seq_max: int = 4
    n_threads: int = 0
    flash_attn: bool | None = None
    embeddings: bool = False
    pooling: int = ll.LLAMA_POOLING_TYPE_UNSPECIFIED  # embeddings only; see ``Model.pooling``
    cache_type: str = "f16"  # a key of KV_CACHE_TYPES; quantized V needs flash attention
    kv_unified: bool = True

    @property
    def unified(self) -> bool:
        """Embedding contexts are always unified: one input may fill all of their cells."""
        return self.kv_unified or self.embeddings

    @property
    def cells(self) -> int:
        """KV cells the context allocates (before llama.cpp rounds up to 256s)."""
        return self.n_ctx if self.unified else self.n_ctx_seq * self.n_seq_max

    @property
    def kv_type(self) -> str:
        """The cache type the context really gets: a quantized cache needs flash attention
        (llama.cpp refuses a quantized V cache without it), so with flash attention forced off
        it is f16, as in Ollama; an unknown name is f16 too."""
        if self.cache_type not in KV_CACHE_TYPES or self.flash_attn is False:
            return "f16"
        return self.cache_type


class Model:
    """A loaded GGUF: weights plus vocab.  Thread-safe for tokenization."""

    def __init__(self, path: Path, options: LoadOptions) -> None:
        init_backend()
        self.path = Path(path)
        self.options = options
        params = ll.llama_model_default_params()
        params.n_gpu_layers = options.n_gpu_layers
        params.use_mmap = options.use_mmap
        self._ptr = ll.llama_model_load_from_file(str(self.path).encode(), params)
        if not self._ptr:
            raise LlamaError(f"llama.cpp could not load {self.path}")
        self.vocab = ll.llama_model_get_vocab(self._ptr)
        self._loras = []
        for lora in options.lora_paths:
            adapter = ll.llama_adapter_lora_init(self._ptr, lora.encode())
            if not adapter:
                self.close()
                raise LlamaError(f"llama.cpp could not load the adapter {lora}")
            self._loras.append(adapter)
        self.n_vocab = ll.llama_vocab_n_tokens(self.vocab)
        self._pieces: dict[bool, dict[int, bytes]] = {False: {}, True: {}}
        self.n_ctx_train = ll.llama_model_n_ctx_train(self._ptr)
        self.n_embd = ll.llama_model_n_embd(self._ptr)
        self.add_bos = bool(ll.llama_vocab_get_add_bos(self.vocab))
        self.bos = ll.llama_vocab_bos(self.vocab)
        self.size = int(ll.llama_model_size(self._ptr))
        self.n_layer = int(ll.llama_model_n_layer(self._ptr))
        # Width of an embedding vector: models with a projection after the last block
        # (``<arch>.embedding_length_out``) output something other than n_embd.
        n_embd_out = getattr(ll, "llama_model_n_embd_out", None)
        self.n_embd_out = int(n_embd_out(self._ptr)) if n_embd_out is not None else self.n_embd
        self.n_embd_out = self.n_embd_out or self.n_embd
        # Recurrent (Mamba, RWKV) and hybrid (Jamba, LFM2, Granite-H, Nemotron-H) memory keeps
        # one state per sequence: llama.cpp cannot cut it at a position, and its seq_cp shares
        # the donor's whole state whatever range is asked (llama-memory-recurrent.cpp), so no
        # sequence may take a prefix of another's.
        self.recurrent = bool(ll.llama_model_is_recurrent(self._ptr))
        self.hybrid = bool(ll.llama_model_is_hybrid(self._ptr))
        self.pooling = self._pooling()

    @property
    def can_copy_prefix(self) -> bool:
        """Whether a sequence's state can be trimmed to, or shared up to, a token position."""
        return not (self.recurrent or self.hybrid)

    def meta(self, key: str) -> str | None:
        """A GGUF metadata value as text, or None when the file does not have ``key``."""
        buf = ctypes.create_string_buffer(256)
        n = ll.llama_model_meta_val_str(self._ptr, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", "replace") if n >= 0 else None

    def _pooling(self) -> int:
        """The pooling an embedding context uses, resolved as llama.cpp does for an unspecified
        one: the GGUF's ``<arch>.pooling_type`` (CLS for BERT-style models, LAST for
        Qwen3-Embedding...).  A model that has none (a chat LLM) would give per-token
        embeddings; Ollama averages those, so it gets MEAN."""
        arch = self.meta("general.architecture") or ""
        value = self.meta(f"{arch}.pooling_type")
        try:
            pooling = int(value) if value is not None else ll.LLAMA_POOLING_TYPE_NONE
        except ValueError:
            pooling = ll.LLAMA_POOLING_TYPE_NONE
        known = (ll.LLAMA_POOLING_TYPE_MEAN, ll.LLAMA_POOLING_TYPE_CLS, ll.LLAMA_POOLING_TYPE_LAST)
        return pooling if pooling in known else ll.LLAMA_POOLING_TYPE_MEAN

    @property
    def ptr(self) -> ctypes.c_void_p:
        return self._ptr

    def close(self) -> None:
        for adapter in self._loras:
            ll.llama_adapter_lora_free(adapter)
        self._loras = []
        if self._ptr:
            ll.llama_model_free(self._ptr)
            self._ptr = None

    # ---- vocab ----------------------------------------------------------------------------
    def tokenize(self, text: str, *, add_bos: bool | None = None, special: bool = True) -> list[int]:
        """Tokens for ``text``; ``special`` parses control-token texts (FIM markers, <|im_start|>)."""
        data = text.encode("utf-8")
        bos = self.add_bos if add_bos is None else add_bos
        capacity = len(data) + 16
        buf = (ll.llama_token * capacity)()
        n = ll.llama_tokenize(self.vocab, data, len(data), buf, capacity, bos, special)
        if n < 0:
            capacity = -n
            buf = (ll.llama_token * capacity)()
            n = ll.llama_tokenize(self.vocab, data, len(data), buf, capacity, bos, special)
        return list(buf[:n])

    def control_tokens(self, texts: list[str]) -> frozenset[int]:
        """Ids of the control tokens whose text is one of ``texts`` (e.g. ``<|im_start|>``)."""
        ids = set()
        for text in texts:
            tokens = self.tokenize(text, add_bos=False, special=True) if text else []
            if len(tokens) == 1 and not self.piece(tokens[0]) and self.piece(tokens[0], special=True):
                ids.add(tokens[0])
        return frozenset(ids)

    def piece(self, token: int, special: bool = False) -> bytes:
        """The bytes of one token (control tokens render empty unless ``special``).

        Cached per (token, special): the vocab never changes, and the engine asks for every
        generated token's piece (a ctypes call and a fresh buffer each time otherwise).
        """
        cache = self._pieces[special]
        data = cache.get(token)
        if data is None:
            data = self._piece(token, special)
            if 0 <= token < self.n_vocab:  # never an entry for an id outside the vocab
                cache[token] = data
        return data

    def _piece(self, token: int, special: bool) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = ll.llama_token_to_piece(self.vocab, token, buf, 64, 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = ll.llama_token_to_piece(self.vocab, token, buf, -n, 0, special)
        return buf.raw[:n]

    def detokenize(self, tokens: list[int], special: bool = False) -> str:
        return b"".join(self.piece(t, special) for t in tokens).decode("utf-8", "replace")

    def is_eog(self, token: int) -> bool:
        return bool(ll.llama_vocab_is_eog(self.vocab, token))

    def fim_ids(self) -> tuple[int, int, int]:
        return (
            ll.llama_vocab_fim_pre(self.vocab),
            ll.llama_vocab_fim_suf(self.vocab),
            ll.llama_vocab_fim_mid(self.vocab),
        )


class Context:
    """A llama.cpp context with ``n_seq_max`` sequences over one unified KV cache, or over one
    cache each (``ContextOptions.kv_unified``)."""

    def __init__(self, model: Model, options: ContextOptions) -> None:
        self.model = model
        self.options = options
        kv_type = options.kv_type
        if kv_type != options.cache_type:
            log.warning(
                "KV cache type %s needs flash attention, which is off (or the type is unknown): using f16",
                options.cache_type,
            )
        self._ptr = self._create(options, kv_type)
        if not self._ptr and kv_type != "f16":
            # A head size the quantized blocks do not divide, or a backend without flash attention.
            log.warning("llama.cpp refused a %s KV cache for this model: using f16", kv_type)
            kv_type = "f16"
            self._ptr = self._create(options, kv_type)
        if not self._ptr:
            raise LlamaError("llama.cpp could not create a context (not enough memory for the KV cache?)")
        self.kv_type = kv_type
        self.unified = options.unified
        if model._loras:
            n = len(model._loras)
            adapters = (type(model._loras[0]) * n)(*model._loras)
            scales = (ctypes.c_float * n)(*([1.0] * n))
            ll.llama_set_adapters_lora(self._ptr, adapters, n, scales)
        self.memory = ll.llama_get_memory(self._ptr)
        self.n_ctx = ll.llama_n_ctx(self._ptr)
        self.n_batch = self._n_batch(options)
        self.can_shift = bool(ll.llama_memory_can_shift(self.memory))
        self.batch = Batch(self.n_batch, options.n_seq_max)

    @staticmethod
    def _n_batch(options: ContextOptions) -> int:
        # Every sequence may decode one token per step, and llama.cpp aborts the process when
        # n_batch < n_seq_max; more than n_ctx is never usable (and would be allocated).
        return max(min(options.n_batch, options.n_ctx), options.n_seq_max, 1)

    def _create(self, options: ContextOptions, kv_type: str) -> ctypes.c_void_p:
        """``llama_init_from_model`` with ``options`` and a ``kv_type`` cache (NULL on failure)."""
        model = self.model
        params = ll.llama_context_default_params()
        params.n_ctx = options.cells
        n_batch = self._n_batch(options)
        params.n_batch = n_batch
        # Pooled embeddings need a whole input in one micro-batch.
        params.n_ubatch = n_batch if options.embeddings else min(n_batch, max(512, options.n_seq_max))
        params.n_seq_max = options.n_seq_max
        params.kv_unified = options.unified
        params.type_k = params.type_v = KV_CACHE_TYPES[kv_type]
        threads = options.n_threads or physical_cores()
        params.n_threads = threads
        params.n_threads_batch = threads
        params.embeddings = options.embeddings
        if options.embeddings:
            params.pooling_type = options.pooling
        params.flash_attn_type = {
            None: ll.LLAMA_FLASH_ATTN_TYPE_AUTO,
            True: ll.LLAMA_FLASH_ATTN_TYPE_ENABLED,
            False: ll.LLAMA_FLASH_ATTN_TYPE_DISABLED,
        }[options.flash_attn]
        return ll.llama_init_from_model(model.ptr, params)

    @property
    def ptr(self) -> ctypes.c_void_p:
        return self._ptr

    def decode(self, preempt: Callable[[], bool] | None = None) -> int:
        """``llama_decode`` of the batch: 0 done, 1 no room in the KV, 2 preempted, < 0 failed.

        ``preempt`` is polled by llama.cpp between graph nodes (a Python call each, so only for
        long steps); when it says True the call stops, llama.cpp drops what the unfinished
        micro-batch put in the memory, and the result is 2.
        """
        if preempt is None:
            return ll.llama_decode(self._ptr, self.batch.raw)
        callback = ll.ggml_abort_callback(lambda _data: bool(preempt()))
        ll.llama_set_abort_callback(self._ptr, callback, None)
        try:
            return ll.llama_decode(self._ptr, self.batch.raw)
        finally:
            ll.llama_set_abort_callback(self._ptr, _NO_ABORT, None)

    def seq_rm(self, seq: int, start: int, end: int = -1) -> bool:
        return bool(ll.llama_memory_seq_rm(self.memory, seq, start, end))

    def seq_cp(self, src: int, dst: int, start: int, end: int) -> None:
        """Give ``dst`` ``src``'s KV at [start, end); ``dst`` holds the same tokens before ``start``.

        A unified cache shares the cells.  Per-sequence caches copy data, and llama.cpp only
        copies a whole sequence (it asserts otherwise and aborts the process): copy all of
        ``src`` (its tokens before ``start`` are ``dst``'s) and cut what lies past ``end``.
        """
        if self.unified:
            ll.llama_memory_seq_cp(self.memory, src, dst, start, end)
            return
        ll.llama_memory_seq_cp(self.memory, src, dst, -1, -1)
        if end >= 0:
            ll.llama_memory_seq_rm(self.memory, dst, end, -1)

    def seq_add(self, seq: int, start: int, end: int, delta: int) -> None:
        ll.llama_memory_seq_add(self.memory, seq, start, end, delta)

    def seq_pos_max(self, seq: int) -> int:
        return int(ll.llama_memory_seq_pos_max(self.memory, seq))

    def clear(self) -> None:
        ll.llama_memory_clear(self.memory, True)

    def embeddings_seq(self, seq: int) -> list[float] | None:
        ptr = ll.llama_get_embeddings_seq(self._ptr, seq)
        if not ptr:
            return None
        return ptr[: self.model.n_embd_out]

    def close(self) -> None:
        self.batch.close()
        if self._ptr:
            ll.llama_free(self._ptr)
            self._ptr = None


class Batch:
    """A reusable ``llama_batch``; one token per entry, one sequence id per token.

    The arrays are Python-owned ctypes arrays (not ``llama_batch_init``'s): each entry's
    ``seq_id`` points at its own cell of one contiguous array, so a whole step's tokens,
    positions, sequences and logits flags are written with one slice assignment per array
    (``extend``) instead of five ctypes writes per token.
    """

    def __init__(self, capacity: int, n_seq_max: int) -> None:
        self.capacity = capacity
        self._token = (ll.llama_token * capacity)()
        self._pos = (ll.llama_pos * capacity)()
        self._n_seq_id = (ctypes.c_int32 * capacity)(*([1] * capacity))
        self._seq = (ll.llama_seq_id * capacity)()
        seq_p = ctypes.POINTER(ll.llama_seq_id)
        base, size = ctypes.addressof(self._seq), ctypes.sizeof(ll.llama_seq_id)
        self._seq_id = (seq_p * capacity)(*(ctypes.cast(base + i * size, seq_p) for i in range(capacity)))
        self._logits = (ctypes.c_int8 * capacity)()
        self.raw = ll.llama_batch(
            n_tokens=0,
            token=self._token,
            embd=None,
            pos=self._pos,
            n_seq_id=self._n_seq_id,
            seq_id=self._seq_id,
            logits=self._logits,
        )

    def clear(self) -> None:
        self.raw.n_tokens = 0

    def __len__(self) -> int:
        return self.raw.n_tokens

    def add(self, token: int, pos: int, seq: int, logits: bool) -> int:
        """Append a token; returns its index (for ``llama_sampler_sample``)."""
        i = self.raw.n_tokens
        if i >= self.capacity:  # writing past the arrays would corrupt memory
            raise IndexError(f"the batch is full ({self.capacity} tokens)")
        self._token[i] = token
        self._pos[i] = pos
        self._seq[i] = seq
        self._logits[i] = logits
        self.raw.n_tokens = i + 1
        return i

    def extend(self, tokens: list[int], pos: list[int], seqs: list[int], logits: list[int]) -> int:
        """Append entries given as parallel lists; returns the index of the first one.

        Nothing is written when they do not all fit.
        """
        i, n = self.raw.n_tokens, len(tokens)
        if not len(pos) == len(seqs) == len(logits) == n:
            raise ValueError("tokens, pos, seqs and logits differ in length")
        if i + n > self.capacity:  # writing past the arrays would corrupt memory
            raise IndexError(f"the batch is full ({self.capacity} tokens)")
        end = i + n
        self._token[i:end] = tokens
        self._pos[i:end] = pos
        self._seq[i:end] = seqs
        self._logits[i:end] = logits
        self.raw.n_tokens = end
        return i

    def close(self) -> None:
        self.raw = None
