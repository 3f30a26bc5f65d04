"""The embedding side of one engine: a second, pooled llama.cpp context over the same weights.

Why a second context: the generation context has no pooling and holds the editors' KV; an
embedding batch needs every token as an output and the whole of each input in one
micro-batch (pooling happens per micro-batch), so it cannot share it.

What it costs, and how that is kept bounded:

- the context is sized to the inputs (at least ``EMBED_MIN_TOKENS`` cells, rounded up, grown
  when a longer input comes), not to the model's training context: llama.cpp computes logits
  for every output, so a context of n tokens holds about n x n_vocab floats twice over;
- it is freed after ``idle_seconds`` without embeddings (and when the model unloads);
- inputs go to the engine thread in groups of at most ``EMBED_BATCH_TOKENS`` tokens and
  ``EMBED_SEQS`` inputs, one engine ``call`` per group, so generation steps run between
  groups instead of waiting for a whole indexing batch.

Pooling is the model's own (``Model.pooling``) and vectors are ``n_embd_out`` wide.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import replace

from .llama import Context, ContextOptions, Model

EMBED_MIN_TOKENS = 512
EMBED_BATCH_TOKENS = 2048
EMBED_SEQS = 8
_ROUND = 256

log = logging.getLogger("llamita.engine")

Call = Callable[[Callable[[], object]], "Future[object]"]


class EmbeddingError(ValueError):
    """Raised for embedding input that cannot be processed (too long without truncation)."""


class Embedder:
    """Owns the embedding context; ``run``/``release_if_idle``/``close`` run on the engine thread."""

    idle_seconds = 30.0

    def __init__(self, model: Model, options: ContextOptions, call: Call, limit: int) -> None:
        self.model = model
        self.options = options
        self.call = call
        self.limit = limit  # the longest input, in tokens (the runner's num_ctx)
        self._ctx: Context | None = None
        self._last_used = 0.0
        self._timer: threading.Timer | None = None
        self._timer_lock = threading.Lock()

    @property
    def n_ctx(self) -> int:
        """Cells of the live embedding context; 0 when there is none (for memory accounting)."""
        ctx = self._ctx
        return ctx.n_ctx if ctx is not None else 0

    # ---- asyncio side ---------------------------------------------------------------------
    async def embed(self, inputs: list[list[int]]) -> list[list[float]]:
        for tokens in inputs:
            if len(tokens) > self.limit:
                raise EmbeddingError("the input length exceeds the context length")
        vectors: list[list[float]] = []
        for group in groups(inputs):
            future = self.call(lambda group=group: self.run(group))
            vectors.extend(await asyncio.wrap_future(future))  # type: ignore[arg-type]
        return vectors

    # ---- engine thread --------------------------------------------------------------------
    def run(self, inputs: list[list[int]]) -> list[list[float]]:
        """Pooled, un-normalised vectors of ``inputs`` (one decode; an empty input gives [])."""
        present = [(i, tokens) for i, tokens in enumerate(inputs) if tokens]
        vectors: list[list[float]] = [[] for _ in inputs]
        if not present:
            return vectors
        ctx = self._context(sum(len(tokens) for _, tokens in present))
        try:
            ctx.batch.clear()
            for seq, (_, tokens) in enumerate(present):
                for pos, token in enumerate(tokens):
                    ctx.batch.add(token, pos, seq, True)
            if ctx.decode() != 0:
                raise EmbeddingError("llama_decode failed while embedding")
            for seq, (i, _) in enumerate(present):
                vector = ctx.embeddings_seq(seq)
                vectors[i] = list(vector) if vector else []
        finally:
            ctx.clear()
            self._last_used = time.monotonic()
            self._arm_timer()
        return vectors

    def release_if_idle(self) -> None:
        """Free the context once it has not been used for ``idle_seconds`` (the timer's job)."""
        with self._timer_lock:
            self._timer = None
        if self._ctx is None:
            return
        left = self.idle_seconds - (time.monotonic() - self._last_used)
        if left > 0:
            self._arm_timer(left)
        else:
            self._ctx.close()
            self._ctx = None

    def close(self) -> None:
        """Free the context (the engine thread has stopped, or this runs on it)."""
        with self._timer_lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if self._ctx is not None:
            self._ctx.close()
            self._ctx = None

    def _context(self, n_tokens: int) -> Context:
        """A context with room for ``n_tokens`` in one micro-batch, grown (never shrunk) as needed."""
        if self._ctx is not None and self._ctx.n_ctx >= n_tokens:
            return self._ctx
        size = max(EMBED_MIN_TOKENS, _round_up(n_tokens))
        if self._ctx is not None:
            size = max(size, min(2 * self._ctx.n_ctx, _round_up(max(self.limit, EMBED_BATCH_TOKENS))))
            self._ctx.close()
            self._ctx = None
        self._ctx = Context(
            self.model,
            replace(
                self.options,
                n_ctx=size,
                n_ctx_seq=size,
                n_batch=size,
                n_seq_max=EMBED_SEQS,
                embeddings=True,
                pooling=self.model.pooling,
            ),
        )
        return self._ctx

    def _arm_timer(self, delay: float | None = None) -> None:
        """One timer at a time; when it fires, ``release_if_idle`` runs on the engine thread."""
        with self._timer_lock:
            if self._timer is not None:
                return
            self._timer = threading.Timer(self.idle_seconds if delay is None else delay, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def _expire(self) -> None:
        """On the timer's thread: hand ``release_if_idle`` to the engine thread."""
        try:
            self.call(self.release_if_idle)
        except RuntimeError:  # the engine stopped or is unloading; ``close`` frees the context
            log.debug("embedding context timer after the engine stopped")


def groups(inputs: list[list[int]]) -> Iterator[list[list[int]]]:
    """Consecutive inputs in groups of at most EMBED_SEQS inputs and EMBED_BATCH_TOKENS tokens
    (a longer input is a group of its own)."""
    group: list[list[int]] = []
    total = 0
    for tokens in inputs:
        if group and (len(group) >= EMBED_SEQS or total + len(tokens) > EMBED_BATCH_TOKENS):
            yield group
            group, total = [], 0
        group.append(tokens)
        total += len(tokens)
    if group:
        yield group


def _round_up(n: int) -> int:
    return -(-n // _ROUND) * _ROUND
