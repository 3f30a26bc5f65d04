"""Recurrent/hybrid memory (``can_copy=False``): placement never shares or cuts a state.

llama.cpp's recurrent ``seq_cp`` hands the donor's *whole* state to the recipient whatever
range is asked, and ``seq_rm`` cannot cut a state at a position.  A FakeKV with those
semantics records what placement asks for; the real-model check is in
``tests/server/api/test_families.py``.
"""

from __future__ import annotations

from llamita.server.engine.cache import SlotTable
from llamita.server.engine.request import Request, RequestStatus, SamplingParams
from llamita.server.engine.scheduler import Scheduler


class RecurrentKV:
    """llama_memory_recurrent's answers: only whole-sequence removal succeeds."""

    def __init__(self) -> None:
        self.ops: list[tuple] = []

    def seq_rm(self, seq: int, start: int, end: int = -1) -> bool:
        self.ops.append(("rm", seq, start, end))
        return start <= 0 and end < 0

    def seq_cp(self, src: int, dst: int, start: int, end: int) -> None:
        self.ops.append(("cp", src, dst, start, end))


def req(tokens: list[int], session: str | None = None) -> Request:
    return Request(prompt=tokens, params=SamplingParams(), emit=lambda e: None, session=session)


PREFIX = list(range(100, 140))  # 40 shared tokens: far more than the 16 that trigger a copy


def test_a_busy_donor_is_never_copied_from() -> None:
    table, kv = SlotTable(4, can_copy=False), RecurrentKV()
    donor = table.place(req(PREFIX + [1] * 30), kv)
    assert donor is not None
    donor.slot.tokens = PREFIX + [1] * 30  # evaluated, still running
    placed = table.place(req([*PREFIX, 2, 3]), kv)
    assert placed is not None and placed.reused == 0 and placed.copied_from is None
    assert not [op for op in kv.ops if op[0] == "cp"]


def test_a_diverging_idle_slot_is_cleared_not_trimmed() -> None:
    table, kv = SlotTable(1, can_copy=False), RecurrentKV()
    first = table.place(req([*PREFIX, 1, 2, 3]), kv)
    assert first is not None
    first.slot.tokens = [*PREFIX, 1, 2, 3]
    table.release(first.slot)
    kv.ops.clear()
    second = table.place(req([*PREFIX, 9, 9]), kv)
    assert second is not None and second.reused == 0 and second.slot.tokens == []
    assert kv.ops == [("rm", 0, 0, -1)]  # the whole state, never a cut at len(PREFIX)


def test_a_state_that_is_a_prefix_of_the_request_is_reused_whole() -> None:
    table, kv = SlotTable(2, can_copy=False), RecurrentKV()
    first = table.place(req(PREFIX, session="ed"), kv)
    assert first is not None
    first.slot.tokens = list(PREFIX)
    table.release(first.slot)
    kv.ops.clear()
    second = table.place(req([*PREFIX, 5, 6, 7]), kv)
    assert second is not None and second.slot is first.slot and second.reused == len(PREFIX)
    assert kv.ops == []


def test_adopt_copies_nothing_from_an_aborted_recurrent_request() -> None:
    kv = RecurrentKV()
    sched = Scheduler(4, 512, can_copy=False)
    old, new = req(PREFIX + [1] * 20, session="ed"), req(PREFIX + [1] * 20 + [2], session="ed")
    sched.waiting.extend([old, new])
    sched.admit(kv)
    old_slot = sched.slots.slot_of(old)
    assert old_slot is not None
    old_slot.tokens = list(old.prompt)  # the old one had evaluated all of its prompt
    sched.finish(old, RequestStatus.FINISHED_ABORTED)
    kv.ops.clear()
    sched.adopt(old_slot, kv)
    assert kv.ops == [] and new.n_past == 0


def test_attention_memory_still_shares_prefixes() -> None:
    """The default (``can_copy=True``) keeps copying a long shared prefix from a busy slot."""
    table, kv = SlotTable(4), RecurrentKV()
    donor = table.place(req(PREFIX + [1] * 30), kv)
    assert donor is not None
    donor.slot.tokens = PREFIX + [1] * 30
    placed = table.place(req([*PREFIX, 2, 3]), kv)
    assert placed is not None and placed.copied_from == donor.slot.seq and placed.reused == len(PREFIX)


def test_the_same_prompt_again_starts_over() -> None:
    """Its last token must be evaluated again for logits, and a state cannot step back one token:
    llama.cpp refuses the cut, and the whole state is dropped."""
    table, kv = SlotTable(1, can_copy=False), RecurrentKV()
    first = table.place(req(PREFIX), kv)
    assert first is not None
    first.slot.tokens = list(PREFIX)
    table.release(first.slot)
    kv.ops.clear()
    again = table.place(req(PREFIX), kv)
    assert again is not None and again.reused == 0 and again.slot.tokens == []
    assert kv.ops == [("rm", 0, len(PREFIX) - 1, -1), ("rm", 0, 0, -1)]
