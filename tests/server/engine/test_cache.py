from __future__ import annotations

import random

import pytest

from llamita.server.engine.cache import SlotTable, common_prefix
from llamita.server.engine.request import Request, SamplingParams


class FakeKV:
    """Records cache operations instead of touching llama.cpp."""

    def __init__(self) -> None:
        self.ops: list[tuple] = []

    def seq_rm(self, seq: int, start: int, end: int = -1) -> bool:
        self.ops.append(("rm", seq, start, end))
        return True

    def seq_cp(self, src: int, dst: int, start: int, end: int) -> None:
        self.ops.append(("cp", src, dst, start, end))


def req(tokens: list[int], session: str | None = None) -> Request:
    return Request(prompt=tokens, params=SamplingParams(), emit=lambda e: None, session=session)


@pytest.mark.parametrize(
    ("a", "b", "n"), [([], [1], 0), ([1, 2, 3], [1, 2, 4], 2), ([1, 2], [1, 2], 2), ([5], [6], 0)]
)
def test_common_prefix(a: list[int], b: list[int], n: int) -> None:
    assert common_prefix(a, b) == n


def test_common_prefix_agrees_with_a_plain_scan() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        a = [rng.randint(0, 3) for _ in range(rng.randint(0, 40))]
        b = a[: rng.randint(0, len(a))] + [rng.randint(0, 3) for _ in range(rng.randint(0, 8))]
        pairs = enumerate(zip(a, b, strict=False))
        expected = next((i for i, (x, y) in pairs if x != y), min(len(a), len(b)))
        assert common_prefix(a, b) == expected == common_prefix(b, a)


def test_reuse_trims_to_common_prefix_and_keeps_one_token_to_evaluate() -> None:
    table, kv = SlotTable(2), FakeKV()
    table.slots[0].tokens = [1, 2, 3, 4, 5]
    placement = table.place(req([1, 2, 3, 9]), kv)
    assert placement is not None and placement.slot.seq == 0 and placement.reused == 3
    assert kv.ops == [("rm", 0, 3, -1)]
    assert table.slots[0].tokens == [1, 2, 3]
    table.release(table.slots[0])
    placement = table.place(req([1, 2, 3]), kv)  # identical prompt: the last token is re-evaluated
    assert placement is not None and placement.reused == 2


def test_session_goes_back_to_its_own_slot() -> None:
    table, kv = SlotTable(3), FakeKV()
    table.slots[1].session, table.slots[1].tokens = "editor-a", [7, 8]
    table.slots[2].tokens = [1, 2, 3, 4]  # a better prefix match that belongs to nobody
    placement = table.place(req([1, 2, 3, 4, 5], session="editor-a"), kv)
    assert placement is not None and placement.slot.seq == 1


def test_new_session_prefers_unclaimed_slot_over_another_editors() -> None:
    table, kv = SlotTable(2), FakeKV()
    table.slots[0].session, table.slots[0].tokens = "editor-a", [1, 2, 3, 4]
    placement = table.place(req([1, 2, 3, 9], session="editor-b"), kv)
    assert placement is not None and placement.slot.seq == 1


def test_prefix_is_copied_from_a_busy_slot() -> None:
    table, kv = SlotTable(2), FakeKV()
    shared = list(range(100))
    table.slots[0].tokens = shared
    table.slots[0].request = req(shared)  # busy
    placement = table.place(req([*shared[:80], 500]), kv)
    assert placement is not None and placement.slot.seq == 1
    assert placement.copied_from == 0 and placement.reused == 80
    assert ("cp", 0, 1, 0, 80) in kv.ops


def test_no_idle_slot() -> None:
    table, kv = SlotTable(1), FakeKV()
    table.place(req([1]), kv)
    assert table.place(req([2]), kv) is None


def test_a_shared_marker_does_not_evict_another_prompt() -> None:
    """FIM prompts all start with the same marker: that match is not worth another editor's KV."""
    table, kv = SlotTable(3), FakeKV()
    marker = [1, 2, 3, 4]
    table.slots[0].tokens = [*marker, *range(100, 700)]  # editor A's half-prefilled prompt
    placement = table.place(req([*marker, *range(800, 1400)]), kv)  # editor B's first prompt
    assert placement is not None and placement.slot.seq != 0
    assert len(table.slots[0].tokens) == 604 and ("rm", 0, 4, -1) not in kv.ops


def test_a_slot_whose_tokens_another_slot_holds_is_evicted_first() -> None:
    table, kv = SlotTable(3), FakeKV()
    prompt_a = list(range(100, 400))
    table.slots[0].tokens = list(prompt_a)  # A's KV
    table.slots[1].tokens = prompt_a[:250]  # a stale copy of most of it
    table.slots[2].tokens = list(range(500, 560))  # C's, short but unique
    placement = table.place(req(list(range(900, 950))), kv)
    assert placement is not None and placement.slot.seq == 1


def test_the_own_prompt_still_wins_over_an_empty_slot() -> None:
    table, kv = SlotTable(2), FakeKV()
    prompt = list(range(100, 400))
    table.slots[0].tokens = [*prompt, 7, 7]  # the previous keystroke's prompt
    placement = table.place(req([*prompt, 9]), kv)
    assert placement is not None and placement.slot.seq == 0 and placement.reused == 300


class ShiftKV(FakeKV):
    """A FakeKV whose memory may refuse partial removal (recurrent) and records shifts."""

    def __init__(self, trims: bool = True) -> None:
        super().__init__()
        self.trims = trims

    def seq_rm(self, seq: int, start: int, end: int = -1) -> bool:
        super().seq_rm(seq, start, end)
        return self.trims or start == 0

    def seq_add(self, seq: int, start: int, end: int, delta: int) -> None:
        self.ops.append(("add", seq, start, end, delta))


def test_place_never_goes_negative_on_an_empty_prompt() -> None:
    table, kv = SlotTable(1), FakeKV()
    table.slots[0].tokens = [1, 2, 3]
    placement = table.place(req([]), kv)
    assert placement is not None and placement.reused == 0 and table.slots[0].tokens == []


def test_a_session_less_request_takes_the_slot_label_off() -> None:
    table, kv = SlotTable(1), FakeKV()
    table.slots[0].session, table.slots[0].tokens = "editor-a", [1, 2, 3]
    placement = table.place(req([1, 2, 9]), kv)
    assert placement is not None and placement.slot.session is None


def test_cells_used_counts_copied_prefixes_once() -> None:
    table = SlotTable(4)
    prefix = list(range(3000))
    for i in range(3):
        table.slots[i].tokens = [*prefix, *range(10_000 * (i + 1), 10_000 * (i + 1) + 100)]
    table.slots[3].tokens = list(range(50_000, 50_500))
    assert table.cells_used() == 3000 + 3 * 100 + 500
    table.slots[1].tokens = list(table.slots[0].tokens)  # the same prompt twice
    table.changed()
    assert table.cells_used() == 3000 + 2 * 100 + 500


def test_make_room_keeps_idle_kv_while_the_shared_cells_fit() -> None:
    """Three running FIM requests share a 3k prefix: 3.3k cells, not 9.3k (review finding 16)."""
    table, kv = SlotTable(4), FakeKV()
    prefix = list(range(3000))
    for i in range(3):
        table.slots[i].tokens = [*prefix, *range(10_000 * (i + 1), 10_000 * (i + 1) + 100)]
        table.slots[i].request = req(table.slots[i].tokens)  # busy
    table.slots[3].tokens = list(range(50_000, 50_500))  # an idle editor's KV
    table.make_room(kv, 64, 4096)
    assert kv.ops == [] and len(table.slots[3].tokens) == 500
    table.make_room(kv, 400, 4096)  # now it does not fit: the idle slot goes
    assert kv.ops == [("rm", 3, 0, -1)] and table.slots[3].tokens == []


def test_shift_in_place_when_no_other_sequence_shares_the_tail() -> None:
    table, kv = SlotTable(2), ShiftKV()
    slot = table.slots[0]
    slot.tokens = list(range(100, 200))
    table.slots[1].tokens = list(range(100, 110))  # shares only what is kept or dropped
    assert table.shift(slot, 4, 48, kv, can_shift=True) == []
    assert kv.ops == [("rm", 0, 4, 52), ("add", 0, 52, 100, -48)]
    assert slot.tokens == [*range(100, 104), *range(152, 200)] and slot.exact == 4
    table.trim_inexact(slot, kv)  # when the request ends, only exact KV stays for reuse
    assert slot.tokens == list(range(100, 104)) and kv.ops[-1] == ("rm", 0, 4, -1)


def test_shift_evaluates_again_when_the_tail_is_shared() -> None:
    """A unified cache has one position per cell: moving a shared cell moves the other sequence."""
    table, kv = SlotTable(2), ShiftKV()
    slot = table.slots[0]
    slot.tokens = list(range(100, 200))
    table.slots[1].tokens = list(range(100, 160))  # copied prefix reaching into the moved tail
    replay = table.shift(slot, 4, 48, kv, can_shift=True)
    assert replay == list(range(152, 200)) and slot.tokens == list(range(100, 104))
    assert kv.ops == [("rm", 0, 4, -1)] and slot.exact is None


def test_shift_of_memory_that_cannot_shift_or_trim_starts_over() -> None:
    table, kv = SlotTable(1), ShiftKV(trims=False)
    slot = table.slots[0]
    slot.tokens = list(range(100, 200))
    replay = table.shift(slot, 4, 48, kv, can_shift=False)
    assert replay == [*range(100, 104), *range(152, 200)] and slot.tokens == []
    assert kv.ops == [("rm", 0, 4, -1), ("rm", 0, 0, -1)]


def test_kv_a_context_shift_moved_is_not_copied() -> None:
    table, kv = SlotTable(2), FakeKV()
    shared = list(range(100))
    table.slots[0].tokens, table.slots[0].exact = list(shared), 40  # shifted in place at 40
    table.slots[0].request = req(shared)  # busy
    placement = table.place(req([*shared, 7]), kv)
    assert placement is not None and placement.reused == 40 and ("cp", 0, 1, 0, 40) in kv.ops
