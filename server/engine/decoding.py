"""One step's ``llama_decode``, failing only the request a failure comes from.

llama.cpp validates and computes a batch as a whole, so one request's bad token or broken
sequence would fail everyone it is batched with.  ``Decoder`` retries on parts of the batch
until the request behind the failure is alone, fails only that request, and leaves every
other sequence's KV exactly as its bookkeeping (``SlotTable``) says:

- rc=1, no room in the KV (llama.cpp restored the memory): evict idle KV, then shrink the
  prompt part of the batch (the rest waits for a later step), then decode in halves; a single
  token that still has no room fails its request.
- rc<0, invalid input or a failed computation (micro-batches that were processed stay in the
  memory, see llama.h): remove from each sequence what the call may have added (from the
  chunk's position on, never the sequence's older KV), then bisect the chunks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .cache import SlotTable
from .llama import Context
from .request import Request
from .scheduler import Chunk

log = logging.getLogger("llamita.engine")

Decoded = Callable[[list[Chunk], list[tuple[Request, int]]], None]
PREEMPTED = 2  # llama_decode's "aborted": the abort callback said stop


class Decoder:
    def __init__(
        self, ctx: Context, slots: SlotTable, decoded: Decoded, fail: Callable[[Request, str], None]
    ) -> None:
        self.ctx = ctx
        self.slots = slots
        self._decoded = decoded  # the chunks are in the KV: record them and sample (request, index)
        self._fail = fail
        self.preempted = 0  # steps stopped for an urgent request

    def decode(self, chunks: list[Chunk], preempt: Callable[[], bool] | None = None) -> float | None:
        """Decode ``chunks``; the seconds one call for all of them took, None if it had to retry.

        ``preempt`` (see ``Context.decode``) may stop a long step for an urgent request: then
        nothing of the step is recorded, each sequence is cut back to its bookkeeping, and the
        chunks are simply scheduled again.
        """
        # In sequence order: with a KV pool per sequence llama.cpp splits a batch into micro-batches
        # of consecutive sequences, so a shuffled batch would cost one graph per run of them.
        chunks = sorted((c for c in chunks if not c.request.status.is_finished), key=lambda c: c.seq)
        if not chunks:
            return None
        logits_at = self._fill_batch(chunks)
        started = time.monotonic()
        rc = self.ctx.decode(preempt)
        seconds = time.monotonic() - started
        if rc == PREEMPTED and preempt is not None:
            self.preempted += 1
            for chunk in chunks:
                self._rollback(chunk)
        elif rc == 1:
            self._no_room(chunks)
        elif rc != 0:
            self._isolate(chunks, rc)
        else:
            self._decoded(chunks, logits_at)
            return seconds
        return None

    def _fill_batch(self, chunks: list[Chunk]) -> list[tuple[Request, int]]:
        """The batch entries whose logits each request samples from (none for an empty chunk).

        The step's entries are gathered in lists and written with one ``Batch.extend``: per
        token ctypes writes were most of the step's Python time at 32 decoding sequences.
        """
        tokens: list[int] = []
        pos: list[int] = []
        seqs: list[int] = []
        flags: list[int] = []
        logits_at = []
        for chunk in chunks:
            n = len(chunk.tokens)
            if not n:
                continue
            tokens += chunk.tokens
            pos += range(chunk.pos, chunk.pos + n)
            seqs += [chunk.seq] * n
            flags += [0] * (n - 1)
            flags.append(1 if chunk.logits else 0)
            if chunk.logits:
                logits_at.append((chunk.request, len(tokens) - 1))
        batch = self.ctx.batch
        batch.clear()
        batch.extend(tokens, pos, seqs, flags)
        return logits_at

    def _no_room(self, chunks: list[Chunk]) -> None:
        if self.slots.evict_one(self.ctx):
            self.decode(chunks)
            return
        decoders = [c for c in chunks if c.decode]
        prompt = [c for c in chunks if not c.decode]
        n_prompt = sum(len(c.tokens) for c in prompt)
        if n_prompt > 1:
            self.decode(decoders + _cut(prompt, n_prompt // 2))
        elif n_prompt == 1 and decoders:
            self.decode(decoders)
        elif len(chunks) > 1:
            half = len(chunks) // 2
            self.decode(chunks[:half])
            self.decode(chunks[half:])
        else:
            self._fail(chunks[0].request, "the KV cache is full")

    def _isolate(self, chunks: list[Chunk], rc: int) -> None:
        for chunk in chunks:
            self._rollback(chunk)
        if len(chunks) == 1:
            log.warning("llama_decode failed (%d) for request %d", rc, chunks[0].request.id)
            self._fail(chunks[0].request, f"llama_decode failed ({rc})")
            return
        half = len(chunks) // 2
        self.decode(chunks[:half])
        self.decode(chunks[half:])

    def _rollback(self, chunk: Chunk) -> None:
        """Remove what a failed call may have left of ``chunk`` in its sequence.

        Only positions from the chunk on are touched, so the sequence keeps its older KV;
        should llama.cpp's view still disagree with the slot's tokens, the sequence starts over
        and its request fails.
        """
        slot = self.slots.slot_of(chunk.request)
        if slot is None:
            return
        n = self.slots.held(slot)
        if self.ctx.seq_rm(slot.seq, n, -1) and self.ctx.seq_pos_max(slot.seq) + 1 == n:
            return
        self.slots.clear(slot, self.ctx)
        self._fail(chunk.request, "llama_decode failed and lost the sequence")


def _cut(chunks: list[Chunk], budget: int) -> list[Chunk]:
    """The leading ``budget`` tokens of ``chunks`` (a cut chunk does not ask for logits)."""
    out = []
    for chunk in chunks:
        if budget <= 0:
            break
        out.append(chunk.cut(min(len(chunk.tokens), budget)))
        budget -= len(out[-1].tokens)
    return out
