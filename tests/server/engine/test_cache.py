from __future__ import annotations

import itertools
import random

import pytest

from llamita.server.engine.cache import Slot, SlotTable, common_prefix
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


# Placement is O(slots) per request (interned token blocks, one sort); its decisions must stay
# those of the plain rules.  ``Reference`` is the straightforward O(slots² x tokens) version.


class Reference:
    """The placement rules of the module docstring, written plainly over copies of the slots."""

    def __init__(self, table: SlotTable) -> None:
        self.can_copy = table.can_copy
        self.slots = [
            Slot(s.seq, list(s.tokens), s.session, s.request, s.last_used, s.exact) for s in table.slots
        ]

    def place(self, request: Request, kv: FakeKV) -> tuple[int, int, int | None] | None:
        idle = [s for s in self.slots if not s.busy]
        if not idle:
            return None
        slot = self.choose(request, idle)
        reused = self.usable(slot, request)
        copied_from = None
        donor = max(
            (s for s in self.slots if s is not slot and self.can_copy),
            key=lambda s: common_prefix(s.tokens, request.prompt),
            default=None,
        )
        if donor is not None:
            donor_lcp = common_prefix(donor.tokens, request.prompt)
            if donor.exact is not None:
                donor_lcp = min(donor_lcp, donor.exact)
            if donor_lcp > reused + 16:
                kv.seq_rm(slot.seq, 0, -1)
                kv.seq_cp(donor.seq, slot.seq, 0, donor_lcp)
                slot.tokens = list(request.prompt[:donor_lcp])
                reused, copied_from = donor_lcp, donor.seq
        reused = max(min(reused, len(request.prompt) - 1), 0)
        if reused < len(slot.tokens) and not kv.seq_rm(slot.seq, reused, -1):
            kv.seq_rm(slot.seq, 0, -1)
            reused = 0
        del slot.tokens[reused:]
        slot.request, slot.session = request, request.session
        return slot.seq, reused, copied_from

    def choose(self, request: Request, idle: list[Slot]) -> Slot:
        if request.session is not None:
            for slot in idle:
                if slot.session == request.session:
                    return slot

        def score(slot: Slot) -> tuple[int, int, float]:
            unclaimed = 1 if slot.session is None or slot.session == request.session else 0
            lcp = self.usable(slot, request)
            gain = lcp - self.lost(slot, lcp)
            if request.session is not None:
                return (unclaimed, gain, -slot.last_used)
            return (gain, unclaimed, -slot.last_used)

        return max(idle, key=score)

    def usable(self, slot: Slot, request: Request) -> int:
        lcp = common_prefix(slot.tokens, request.prompt)
        return lcp if self.can_copy or lcp == len(slot.tokens) else 0

    def lost(self, slot: Slot, kept: int) -> int:
        if len(slot.tokens) <= kept:
            return 0
        if not self.can_copy:
            return len(slot.tokens)
        elsewhere = max(
            (common_prefix(slot.tokens, o.tokens) for o in self.slots if o is not slot), default=0
        )
        return max(len(slot.tokens) - max(kept, elsewhere), 0)

    def cells_used(self) -> int:
        lists = sorted(s.tokens for s in self.slots if s.tokens)
        return sum(len(t) for t in lists) - sum(common_prefix(a, b) for a, b in itertools.pairwise(lists))

    def make_room(self, kv: FakeKV, n_tokens: int, n_cells: int) -> list[int]:
        """The seqs evicted (the first check uses a fresh count, as the table's after ``changed``)."""
        evicted = []
        for slot in sorted((s for s in self.slots if not s.busy and s.tokens), key=lambda s: s.last_used):
            if self.cells_used() + n_tokens <= n_cells:
                break
            kv.seq_rm(slot.seq, 0, -1)
            slot.tokens = []
            evicted.append(slot.seq)
        return evicted


BASES = [[(b * 7 + i * 3) % 5 for i in range(60)] for b in range(3)]  # few token values: near misses


def random_tokens(rng: random.Random) -> list[int]:
    base = rng.choice(BASES)
    return base[: rng.randint(0, len(base))] + [rng.randint(0, 4) for _ in range(rng.randint(0, 12))]


def random_table(rng: random.Random, can_copy: bool) -> SlotTable:
    table = SlotTable(rng.randint(1, 7), can_copy=can_copy, block=rng.choice([1, 2, 4, 8]))
    for s in table.slots:
        s.tokens = random_tokens(rng)
        s.session = rng.choice([None, None, "a", "b", "c"])
        s.request = req(list(s.tokens)) if rng.random() < 0.3 else None
        s.last_used = float(rng.randint(0, 3))  # ties: the slot order decides, as it did
        s.exact = rng.choice([None, None, rng.randint(0, 40)])
    return table


def assert_same_state(table: SlotTable, ref: Reference) -> None:
    for mine, theirs in zip(table.slots, ref.slots, strict=True):
        assert (mine.tokens, mine.session, mine.request) == (theirs.tokens, theirs.session, theirs.request)
    assert_coherent(table)


def assert_coherent(table: SlotTable) -> None:
    """The trie of blocks holds exactly the slots' blocks, each prefix once, counted right."""
    n, counts = table._block, {}
    for slot in table.slots:
        path = table._path(slot)
        expected = [tuple(slot.tokens[i : i + n]) for i in range(0, len(slot.tokens) - n + 1, n)]
        assert [node.block for node in path] == slot._blocks == expected
        for i, node in enumerate(path):
            assert table._nodes[(path[i - 1] if i else None, node.block)] is node
            counts[node] = counts.get(node, 0) + 1
    assert {node: node.n for node in table._nodes.values()} == counts


@pytest.mark.parametrize("can_copy", [True, False])
def test_placement_decides_as_the_plain_rules_do(can_copy: bool) -> None:
    rng = random.Random(13 if can_copy else 31)
    for _ in range(1500):
        table = random_table(rng, can_copy)
        ref = Reference(table)
        request = req(random_tokens(rng), rng.choice([None, "a", "b", "d"]))
        kv, ref_kv = FakeKV(), FakeKV()
        placed = table.place(request, kv)
        expected = ref.place(request, ref_kv)
        got = None if placed is None else (placed.slot.seq, placed.reused, placed.copied_from)
        assert got == expected and kv.ops == ref_kv.ops
        assert_same_state(table, ref)
        assert placed is None or table.slot_of(request) is placed.slot


def test_cells_and_make_room_agree_with_a_recount() -> None:
    rng = random.Random(5)
    for _ in range(800):
        table = random_table(rng, True)
        ref = Reference(table)
        assert table.cells_used() == ref.cells_used()
        n_tokens, n_cells = rng.randint(0, 30), rng.randint(0, 200)
        kv, ref_kv = FakeKV(), FakeKV()
        fits = table.kv_tokens() + n_tokens <= n_cells  # the cheap bound: no count at all
        evicted = [] if fits else ref.make_room(ref_kv, n_tokens, n_cells)
        table.make_room(kv, n_tokens, n_cells)
        assert kv.ops == ref_kv.ops and [op[1] for op in kv.ops] == evicted
        assert table.cells_used() == ref.cells_used()
        table.changed()
        assert table.cells_used() == ref.cells_used()


def test_the_table_stays_coherent_through_every_change_to_the_tokens() -> None:
    """Decodes, copies, shifts, trims, evictions, and lists set or cut from outside: placement
    and the cell count still match the plain rules on the tokens as they are."""
    rng = random.Random(2026)
    for _ in range(60):
        table, kv = SlotTable(rng.randint(2, 6), block=rng.choice([2, 4, 8])), ShiftKV()
        for _ in range(60):
            slot = rng.choice(table.slots)
            op = rng.randrange(9)
            if op == 0:
                ref = Reference(table)
                request = req(random_tokens(rng), rng.choice([None, "a", "b"]))
                placed, expected = table.place(request, kv), ref.place(request, FakeKV())
                assert (placed and (placed.slot.seq, placed.reused, placed.copied_from)) == expected
                assert_same_state(table, ref)
            elif op == 1:
                table.decoded(slot, [rng.randint(0, 4) for _ in range(rng.randint(1, 9))])
            elif op == 2 and slot.busy:
                table.release(slot)
            elif op == 3:
                donor = rng.choice(table.slots)
                end = len(donor.tokens)
                if donor is not slot and len(slot.tokens) <= end:
                    table.copy(donor, slot, len(slot.tokens), rng.randint(len(slot.tokens), end), kv)
            elif op == 4 and len(slot.tokens) > 4:
                keep = rng.randint(0, len(slot.tokens) - 2)
                discard = rng.randint(1, len(slot.tokens) - keep - 1)
                table.shift(slot, keep, discard, kv, can_shift=rng.random() < 0.7)
                if rng.random() < 0.5:
                    table.trim_inexact(slot, kv)
            elif op == 5 and not slot.busy:
                table.evict(slot, kv) if rng.random() < 0.5 else table.clear(slot, kv)
            elif op == 6:
                slot.tokens = random_tokens(rng)  # set from outside, as tests and callers do
            elif op == 7:
                del slot.tokens[rng.randint(0, len(slot.tokens)) :]  # cut in place from outside
                table.decoded(slot, [rng.randint(0, 4)])
            elif op == 8:
                table.make_room(kv, rng.randint(0, 20), rng.randint(0, 120))
            table.changed()
            assert table.cells_used() == Reference(table).cells_used()
            assert_coherent(table)
