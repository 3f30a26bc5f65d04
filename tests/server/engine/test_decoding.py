"""The step's batch: what ``Decoder`` writes into the ``llama_batch`` (no model needed)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from llamita.server.engine.decoding import Decoder
from llamita.server.engine.llama import Batch, LoadOptions, Model
from llamita.server.engine.scheduler import Chunk


def entries(batch: Batch) -> list[tuple[int, int, int, int, int]]:
    """(token, pos, n_seq_id, seq, logits) of every entry, read back through the llama_batch."""
    raw = batch.raw
    return [
        (raw.token[i], raw.pos[i], raw.n_seq_id[i], raw.seq_id[i][0], raw.logits[i])
        for i in range(len(batch))
    ]


def test_add_and_extend_write_the_same_entries() -> None:
    one, many = Batch(8, 4), Batch(8, 4)
    for token, pos, seq, logits in [(5, 0, 0, False), (6, 1, 0, True), (7, 9, 3, True)]:
        one.add(token, pos, seq, logits)
    assert many.extend([5, 6], [0, 1], [0, 0], [0, 1]) == 0
    assert many.extend([7], [9], [3], [1]) == 2
    assert entries(one) == entries(many) == [(5, 0, 1, 0, 0), (6, 1, 1, 0, 1), (7, 9, 1, 3, 1)]
    many.clear()
    assert len(many) == 0 and many.extend([1], [4], [2], [0]) == 0 and entries(many) == [(1, 4, 1, 2, 0)]


def test_a_full_batch_refuses_and_writes_nothing() -> None:
    batch = Batch(3, 2)
    batch.extend([1, 2], [0, 1], [0, 0], [0, 0])
    with pytest.raises(IndexError, match="full"):
        batch.extend([3, 4], [2, 3], [0, 0], [0, 1])
    assert entries(batch) == [(1, 0, 1, 0, 0), (2, 1, 1, 0, 0)]
    batch.add(3, 2, 1, True)
    with pytest.raises(IndexError, match="full"):
        batch.add(4, 3, 1, True)
    with pytest.raises(ValueError, match="length"):
        Batch(3, 2).extend([1, 2], [0], [0, 0], [0, 0])


def test_fill_batch_asks_logits_of_each_chunks_last_token_only() -> None:
    batch = Batch(16, 4)
    decoder = Decoder(SimpleNamespace(batch=batch), None, None, None)  # type: ignore[arg-type]
    a, b, c, d = (SimpleNamespace(id=i) for i in range(4))
    chunks = [
        Chunk(a, 0, [10, 11, 12], 0, True),  # a prompt's last part: logits at its end
        Chunk(b, 1, [20, 21], 5, False),  # a cut prompt part: no logits
        Chunk(c, 2, [], 7, True),  # empty: nothing written, nothing sampled
        Chunk(d, 3, [30], 40, True, decode=True),
    ]
    batch.add(99, 0, 0, True)  # a previous step's entry: the fill starts over
    logits_at = decoder._fill_batch(chunks)
    assert [(r.id, i) for r, i in logits_at] == [(0, 2), (3, 5)]
    assert entries(batch) == [
        (10, 0, 1, 0, 0),
        (11, 1, 1, 0, 0),
        (12, 2, 1, 0, 1),
        (20, 5, 1, 1, 0),
        (21, 6, 1, 1, 0),
        (30, 40, 1, 3, 1),
    ]


@pytest.mark.model
def test_cached_pieces_are_the_vocab_pieces(smollm2_gguf: Path) -> None:
    """``Model.piece`` is cached per (token, special): the same bytes as asking llama.cpp each time."""
    model = Model(smollm2_gguf, LoadOptions())
    try:
        im_start = model.tokenize("<|im_start|>", add_bos=False)[0]
        tokens = [*model.tokenize("héllo wörld 🎉 def f(x):", add_bos=False), im_start, model.n_vocab - 1]
        for _ in range(2):  # the second round comes from the cache
            for token in tokens:
                for special in (False, True):
                    assert model.piece(token, special) == model._piece(token, special)
        assert model.piece(im_start) == b"" and model.piece(im_start, special=True) == b"<|im_start|>"
        assert model.detokenize(tokens[:-2]) == "héllo wörld 🎉 def f(x):"
    finally:
        model.close()


def test_a_step_is_written_in_sequence_order() -> None:
    """With a KV pool per sequence llama.cpp cuts a batch into micro-batches of consecutive
    sequences: a shuffled step would cost one graph per run, so the decoder sorts it."""
    batch = Batch(16, 4)
    written: list[list[tuple[int, int, int, int, int]]] = []
    ctx = SimpleNamespace(batch=batch, decode=lambda preempt=None: written.append(entries(batch)) or 0)
    decoder = Decoder(ctx, None, lambda chunks, logits_at: None, None)  # type: ignore[arg-type]
    live = SimpleNamespace(status=SimpleNamespace(is_finished=False))
    chunks = [Chunk(live, seq, [seq + 10], 3, True, decode=True) for seq in (2, 0, 3, 1)]
    assert decoder.decode(chunks) is not None
    assert [entry[3] for entry in written[0]] == [0, 1, 2, 3]
