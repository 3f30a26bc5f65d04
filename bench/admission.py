"""Admission cost: microseconds per KV placement (``SlotTable.place``) with many editors' slots.

Placement runs for every request, and with 64 editors typing that is every keystroke; it used
to compare every slot with every other one over whole prompts (145 ms a placement at 64 slots
of 4k tokens).  This builds tables of 8/32/64 slots of 4k tokens (FIM prompts: one marker,
a project's shared context, the editor's own file; half the slots busy), places a stream of
keystrokes, new editors and session-less requests, and prints the median and p95 cost of
``place`` (wall, and this thread's CPU: a busy box stretches only the wall time), of a full
``cells_used`` recount and of ``make_room`` evicting half the idle slots (mostly freeing their
token lists).  The previous algorithm is timed on the same workload side by side (fewer rounds).

Usage: ``.venv/bin/python bench/admission.py [--slots 8,32,64] [--tokens 4096] [--rounds 200]
[--old-rounds 5]``.  Not a test: the figures depend on the machine; compare new with old.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import random
import statistics
import time
from array import array
from collections.abc import Callable

from llamita.server.engine.cache import Slot, SlotTable, common_prefix
from llamita.server.engine.request import Request, SamplingParams

VOCAB = 49_152
MARKER = [49_100, 49_101, 49_102, 49_103, 49_104]  # the FIM prefix every prompt starts with


class FakeKV:
    def seq_rm(self, seq: int, start: int, end: int = -1) -> bool:
        return True

    def seq_cp(self, src: int, dst: int, start: int, end: int) -> None:
        pass

    def seq_add(self, seq: int, start: int, end: int, delta: int) -> None:
        pass


class OldSlotTable(SlotTable):
    """The placement before issue 13: every slot against the request and every other slot."""

    def place(self, request: Request, kv: FakeKV) -> object:  # type: ignore[override]
        idle = self.idle()
        if not idle:
            return None
        slot = self._old_choose(request, idle)
        reused = self._old_usable(slot, request)
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
                slot.tokens = list(request.prompt[:donor_lcp])
                reused = donor_lcp
        reused = max(min(reused, len(request.prompt) - 1), 0)
        del slot.tokens[reused:]
        self.changed()
        slot.request, slot.session, slot.last_used = request, request.session, time.monotonic()
        return slot

    def _old_choose(self, request: Request, idle: list[Slot]) -> Slot:
        if request.session is not None:
            for slot in idle:
                if slot.session == request.session:
                    return slot

        def score(slot: Slot) -> tuple[int, int, float]:
            unclaimed = 1 if slot.session is None or slot.session == request.session else 0
            lcp = self._old_usable(slot, request)
            gain = lcp - self._old_lost(slot, lcp)
            if request.session is not None:
                return (unclaimed, gain, -slot.last_used)
            return (gain, unclaimed, -slot.last_used)

        return max(idle, key=score)

    def _old_usable(self, slot: Slot, request: Request) -> int:
        lcp = common_prefix(slot.tokens, request.prompt)
        return lcp if self.can_copy or lcp == len(slot.tokens) else 0

    def _old_lost(self, slot: Slot, kept: int) -> int:
        if len(slot.tokens) <= kept:
            return 0
        others = (common_prefix(slot.tokens, o.tokens) for o in self.slots if o is not slot)
        return max(len(slot.tokens) - max(kept, max(others, default=0)), 0)

    def cells_used(self) -> int:
        if self._cells is None:
            lists = sorted(s.tokens for s in self.slots if s.tokens)
            total = sum(len(t) for t in lists)
            self._cells = total - sum(common_prefix(a, b) for a, b in itertools.pairwise(lists))
        return self._cells

    def make_room(self, kv: FakeKV, n_tokens: int, n_cells: int) -> None:  # type: ignore[override]
        if self.kv_tokens() + n_tokens <= n_cells:
            return
        for slot in sorted((s for s in self.slots if not s.busy and s.tokens), key=lambda s: s.last_used):
            if self.cells_used() + n_tokens <= n_cells:
                break
            self.evict(slot, kv)


def fresh(tokens: list[int]) -> list[int]:
    """The same token ids as new int objects, as a new tokenization of the prompt gives."""
    return array("l", tokens).tolist()


class Workload:
    """Editors in a few projects: marker + the project's shared context + the editor's own file."""

    def __init__(self, n_slots: int, n_tokens: int, seed: int = 13) -> None:
        self.rng = random.Random(seed)
        self.n_tokens = n_tokens
        n_projects = max(2, n_slots // 8)
        self.contexts = [self.noise(n_tokens // 4) for _ in range(n_projects)]
        self.files: dict[str, tuple[int, list[int]]] = {}  # session -> (project, file)
        self.new_editors = itertools.count()

    def noise(self, n: int) -> list[int]:
        return [self.rng.randrange(VOCAB) for _ in range(n)]

    def editor(self, project: int) -> str:
        session = f"editor-{next(self.new_editors)}"
        ctx = self.contexts[project]
        self.files[session] = (project, self.noise(self.n_tokens - len(MARKER) - len(ctx)))
        return session

    def prompt(self, session: str) -> list[int]:
        project, file = self.files[session]
        return fresh([*MARKER, *self.contexts[project], *file])

    def keystroke(self, session: str) -> list[int]:
        """An edit in the last quarter of the editor's file (the cursor moves on)."""
        project, file = self.files[session]
        at = self.rng.randrange(len(file) * 3 // 4, len(file))
        file[at : at + 1] = self.noise(self.rng.randint(1, 2))
        del file[self.n_tokens - len(MARKER) - len(self.contexts[project]) :]
        return self.prompt(session)

    def table(self, n_slots: int, cls: type[SlotTable]) -> SlotTable:
        """Every slot an editor's prompt; the first half busy (their requests still running)."""
        table = cls(n_slots)
        for i, slot in enumerate(table.slots):
            session = self.editor(i % len(self.contexts))
            slot.tokens, slot.session, slot.last_used = self.prompt(session), session, float(i)
            if i < n_slots // 2:
                slot.request = Request(list(slot.tokens), SamplingParams(), lambda e: None, session)
        table.cells_used()  # builds whatever the table keeps (not timed)
        return table

    def request(self) -> Request:
        roll = self.rng.random()
        if roll < 0.7:  # the next keystroke of a known editor
            session = self.rng.choice(list(self.files))
            prompt = self.keystroke(session)
        elif roll < 0.9:  # a new editor in one of the projects
            session = self.editor(self.rng.randrange(len(self.contexts)))
            prompt = self.prompt(session)
        else:  # a session-less request with a project's context
            session, prompt = None, fresh([*MARKER, *self.rng.choice(self.contexts), *self.noise(500)])
        return Request(prompt, SamplingParams(), lambda e: None, session)


def time_places(table: SlotTable, work: Workload, rounds: int) -> tuple[list[float], list[float]]:
    """µs per ``place``, wall and this thread's CPU (a busy box stretches the wall time only);
    after each, the prompt is prefilled and another busy slot finishes."""
    kv, costs, cpu = FakeKV(), [], []
    for _ in range(rounds):
        request = work.request()
        start, start_cpu = time.perf_counter(), time.thread_time()
        table.place(request, kv)
        costs.append((time.perf_counter() - start) * 1e6)
        cpu.append((time.thread_time() - start_cpu) * 1e6)
        slot = table.slot_of(request)
        assert slot is not None
        table.decoded(slot, request.prompt[len(slot.tokens) :])
        table.release(work.rng.choice([s for s in table.slots if s.busy and s is not slot]))
    return costs, cpu


def time_each(build: Callable[[], SlotTable], act: Callable[[SlotTable], object], rounds: int) -> list[float]:
    costs = []
    for _ in range(rounds):
        table = build()
        start = time.perf_counter()
        act(table)
        costs.append((time.perf_counter() - start) * 1e6)
    return costs


def recount(table: SlotTable) -> int:
    table.changed()
    return table.cells_used()


def counted(table: SlotTable) -> SlotTable:
    """A copy with its cells counted, as the engine's table is between placements."""
    table = copy.deepcopy(table)
    table.cells_used()
    return table


def evict_half(table: SlotTable) -> None:
    """``make_room`` that has to drop about half of the idle slots' KV (cells as last counted)."""
    need = table.cells_used() - sum(len(s.tokens) for s in table.idle()) // 2
    table.make_room(FakeKV(), 1, need)


def figures(costs: list[float]) -> str:
    if not costs:
        return "-"
    p95 = statistics.quantiles(costs, n=20)[-1] if len(costs) > 1 else costs[0]
    return f"{statistics.median(costs):9.0f} {p95:9.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--slots", default="8,32,64")
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--old-rounds", type=int, default=5, help="0: leave the old algorithm out")
    args = parser.parse_args()
    print(f"µs per call (median p95), {args.tokens} tokens a slot, half the slots busy")
    print(f"{'slots':>5} {'what':<12} {'new median':>10} {'p95':>9} {'old median':>10} {'p95':>9}")
    for n_slots in (int(n) for n in args.slots.split(",")):
        rows = {}
        for cls, rounds in ((SlotTable, args.rounds), (OldSlotTable, args.old_rounds)):
            work = Workload(n_slots, args.tokens)
            base = work.table(n_slots, cls)
            n = max(rounds // 10, 1) if rounds else 0
            wall, cpu = time_places(base, work, rounds)
            rows.setdefault("place", []).append(wall)
            rows.setdefault("place (cpu)", []).append(cpu)
            rows.setdefault("cells_used", []).append(time_each(lambda b=base: b, recount, n))
            rows.setdefault("make_room", []).append(time_each(lambda b=base: counted(b), evict_half, n))
        for what, (new, old) in rows.items():
            print(f"{n_slots:>5} {what:<12} {figures(new)} {figures(old)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
