"""KV-cache bookkeeping: which tokens each sequence holds, and where a new request should go.

The context has ``n_seq_max`` sequences over one unified KV cache.  Each sequence (a
*slot*) remembers the tokens in its cells and the editor session that used it last, so
that the next keystroke from that editor lands on its own KV and only the changed tail is
evaluated.  Placement, for a request that has to wait for nothing:

1. the slot of the same session (``X-Llamita-Session``), if idle;
2. otherwise an idle slot: for a session request, one no other session has claimed; then
   the one where placing it gains most: the prefix it shares with the request, minus the
   tokens of the slot that would be lost (held by no other slot and not shared with the
   request); then the least recently used.  Without the loss term, prompts that all start
   with the same FIM marker would each evict another editor's long prompt for a 4-token
   match, and with several editors typing no prompt would ever finish its prefill;
3. if a *busy* slot shares a longer prefix than that, its prefix is copied into the chosen
   slot (``seq_cp`` shares cells in a unified cache, so this costs no compute).

Recurrent and hybrid models (``can_copy=False``) keep one state per sequence, the state after
its last token: it cannot be trimmed to a position, and llama.cpp's ``seq_cp`` hands over the
donor's whole state whatever range is asked.  For them a slot is reused only when everything
it holds is a prefix of the request, nothing is ever copied, and any other slot is cleared.

With 64 editors of 4k-token prompts, placement runs at every keystroke, so it costs O(slots)
per request: a trie of token blocks makes a shared prefix one object per block
(``SlotTable._path``), so a slot's prefix with the request costs a bisection and one block,
and what slots share with each other comes from the trie's counts, or one sort of the slots.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import compress, count
from operator import ne
from typing import Protocol

from .request import Request

BLOCK = 64  # tokens per trie node: prefixes compare at one pointer per block


class Node:
    """A trie node: the prefix of full blocks up to ``block``, shared by ``n`` slots."""

    __slots__ = ("block", "key", "n")

    def __init__(self, key: tuple[Node | None, tuple[int, ...]]) -> None:
        self.key, self.block, self.n = key, key[1], 0


class KVOps(Protocol):
    """The cache operations placement and context shifts need (a llama.cpp ``Context`` in production)."""

    def seq_rm(self, seq: int, start: int, end: int = -1) -> bool: ...

    def seq_cp(self, src: int, dst: int, start: int, end: int) -> None: ...

    def seq_add(self, seq: int, start: int, end: int, delta: int) -> None: ...


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the shared prefix; slices compare in C, so placement stays cheap on long prompts."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo], and the first difference lies in [lo, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    return lo


@dataclass(eq=False)
class Slot:
    """One sequence's bookkeeping.  Change ``tokens`` through ``SlotTable`` or assign a new list:
    the table notices a new list or a shorter one, not one edited in place outside it."""

    seq: int
    tokens: list[int] = field(default_factory=list)  # what the KV holds for ``seq`` (see ``changed``)
    session: str | None = None
    request: Request | None = None
    last_used: float = 0.0
    exact: int | None = None  # after an in-place context shift, only KV below this is exact
    # ``tokens`` in the trie (``SlotTable._path``): the list described, its nodes and their blocks.
    _of: list[int] | None = field(default=None, init=False, repr=False)
    _path: list[Node] = field(default_factory=list, init=False, repr=False)
    _blocks: list[tuple[int, ...]] = field(default_factory=list, init=False, repr=False)

    @property
    def busy(self) -> bool:
        return self.request is not None


@dataclass
class Placement:
    slot: Slot
    reused: int  # prompt tokens already in the slot's KV (own or copied)
    copied_from: int | None = None


class SlotTable:
    """The slots, and placement over them in O(slots) per request (see ``_path``)."""

    def __init__(self, n_slots: int, can_copy: bool = True, block: int = BLOCK) -> None:
        self.can_copy = can_copy  # False: recurrent state, only whole-state reuse (see above)
        self.slots = [Slot(seq) for seq in range(n_slots)]
        self._cells: int | None = None  # ``cells_used``, kept up to date between placements
        self._block = block
        self._nodes: dict[tuple[Node | None, tuple[int, ...]], Node] = {}  # (parent, block) -> node
        self._by_request: dict[int, Slot] = {}  # request id -> its slot (``slot_of``)

    def changed(self) -> None:
        """Slots' tokens changed other than by decoding: count the cells again when asked."""
        self._cells = None

    def grew(self, n: int) -> None:
        """``n`` tokens were decoded: each went into a new cell of its own."""
        if self._cells is not None:
            self._cells += n

    def idle(self) -> list[Slot]:
        return [s for s in self.slots if not s.busy]

    def held(self, slot: Slot) -> int:
        """Tokens ``slot``'s sequence holds: the position its next token goes to."""
        return len(slot.tokens)

    def shared(self, slot: Slot, tokens: Sequence[int]) -> int:
        """Length of the prefix ``slot`` holds in common with ``tokens``."""
        return common_prefix(slot.tokens, tokens)

    def kv_tokens(self) -> int:
        """Tokens all sequences hold (a shared prefix counts once per sequence; see ``cells_used``)."""
        return sum(len(s.tokens) for s in self.slots)

    def place(self, request: Request, kv: KVOps) -> Placement | None:
        """Bind ``request`` to a slot and trim that slot's KV to the reusable prefix."""
        idle = self.idle()
        if not idle:
            return None
        prompt = request.prompt
        for s in self.slots:
            self._path(s)  # the trie holds every slot's blocks before the prompt walks it
        mine = self._prompt_path(prompt, max(len(s.tokens) for s in self.slots))
        lcp = _Prefixes(prompt, mine, self._block)  # each slot compared once, if at all
        slot = self._choose(request, idle, lcp)
        reused = self._usable(slot, lcp[slot])
        copied_from, donor, k = None, None, len(mine)
        if self.can_copy:  # recurrent: never a donor
            # Only slots through the prompt's last node in the trie can share the most with it.
            near = [s for s in self.slots if s is not slot and (not k or s._path[k - 1 : k] == mine[-1:])]
            donor = max(near or (s for s in self.slots if s is not slot), key=lcp.__getitem__, default=None)
        if donor is not None:
            donor_lcp = lcp[donor]
            if donor.exact is not None:  # a context shift moved the rest: not this prompt's KV
                donor_lcp = min(donor_lcp, donor.exact)
            if donor_lcp > reused + 16:
                kv.seq_rm(slot.seq, 0, -1)
                kv.seq_cp(donor.seq, slot.seq, 0, donor_lcp)
                self._reset(slot, list(prompt[:donor_lcp]), self._path(donor)[: donor_lcp // self._block])
                reused, copied_from = donor_lcp, donor.seq
        # Always evaluate at least the last prompt token: its logits start the generation.
        reused = max(min(reused, len(prompt) - 1), 0)
        if reused < len(slot.tokens) and not kv.seq_rm(slot.seq, reused, -1):
            kv.seq_rm(slot.seq, 0, -1)  # memory that cannot be trimmed (recurrent models)
            reused = 0
        del slot.tokens[reused:]
        self._path(slot)
        self.changed()
        slot.request = request
        slot.session = request.session  # the KV is now this request's, not a previous editor's
        slot.last_used = time.monotonic()
        self._by_request[request.id] = slot
        return Placement(slot, reused, copied_from)

    def _choose(self, request: Request, idle: list[Slot], lcp: dict[Slot, int]) -> Slot:
        session = request.session
        if session is not None:
            for slot in idle:
                if slot.session == session:
                    return slot
            # An editor must not evict another editor's KV while an unclaimed slot exists;
            # shared prefixes are still reused by copying (see ``place``).
            unclaimed = [s for s in idle if s.session is None]
            idle = unclaimed or idle
        kept = {s: self._usable(s, lcp[s]) for s in idle}
        bounds = {s: self._elsewhere_bounds(s, kept[s]) for s in idle}

        def score(slot: Slot, elsewhere: int) -> tuple[int, int, float]:
            gain = kept[slot] - self._lost(slot, kept[slot], elsewhere)
            return (gain, 0 if session is not None else int(slot.session is None), -slot.last_used)

        # What another slot also holds is not lost.  The trie's counts bound it within a block;
        # only the slots that may win on those bounds need it exactly.
        best = max(score(s, bounds[s][0]) for s in idle)
        idle = [s for s in idle if score(s, bounds[s][1]) >= best]
        unsure = [s for s in idle if bounds[s][0] != bounds[s][1]]
        if sum(bounds[s][2] for s in unsure) > len(self.slots):
            order, adj = self._sorted()  # cheaper than comparing each with the slots it may share with
            adj.append(0)
            exact = {s: max(adj[i], adj[i + 1]) for i, s in enumerate(order)}
        else:
            exact = {s: self._elsewhere_of(s, bounds[s][0] // self._block) for s in unsure}
        return max(idle, key=lambda s: score(s, exact.get(s, bounds[s][0])))

    def _elsewhere_bounds(self, slot: Slot, kept: int) -> tuple[int, int, int]:
        """Bounds on the longest prefix ``slot`` shares with another slot, when it matters: the
        full blocks another slot also holds, less than a block more; and how many slots to ask."""
        size = len(slot.tokens)
        if size <= kept or not self.can_copy:
            return 0, 0, 0
        path = slot._path
        lo, hi = 0, len(path)
        while lo < hi:  # the slots through a node only get fewer along a path
            mid = (lo + hi) // 2
            if path[mid].n >= 2:
                lo = mid + 1
            else:
                hi = mid
        low = lo * self._block
        return low, min(size, low + self._block - 1), path[lo - 1].n if lo else len(self.slots)

    def _elsewhere_of(self, slot: Slot, k: int) -> int:
        """The longest prefix ``slot`` shares with another slot, which shares at most ``k`` blocks."""
        node, n, best = slot._path[k - 1 : k], self._block, 0
        for o in self.slots:
            if o is not slot and o._path[k - 1 : k] == node:  # through the same node (or k = 0)
                best = max(best, _lcp(slot.tokens, slot._path, o.tokens, o._path, n))
        return best

    def _usable(self, slot: Slot, lcp: int) -> int:
        """Prompt tokens the slot's state can serve: its prefix ``lcp`` shared with the request,
        or for recurrent state all of it when it is a prefix of the request and nothing otherwise."""
        return lcp if self.can_copy or lcp == len(slot.tokens) else 0

    def _lost(self, slot: Slot, kept: int, elsewhere: int) -> int:
        """Tokens of ``slot`` that trimming it to ``kept`` would drop and no other slot holds
        (``elsewhere``: the longest prefix it shares with another slot)."""
        if len(slot.tokens) <= kept:
            return 0
        if not self.can_copy:
            return len(slot.tokens)  # no other slot can lend a recurrent state back
        return max(len(slot.tokens) - max(kept, elsewhere), 0)

    def _path(self, slot: Slot) -> list[Node]:
        """``slot.tokens``' full blocks of ``block`` tokens as trie nodes: one object per prefix.

        Two lists share their first i blocks exactly when their paths hold the same node at
        i - 1, so a longest common prefix is a binary search on identity plus one block of
        tokens: O(log blocks + block), not O(tokens).  Kept up to date lazily: a list assigned
        anew is walked again, one cut shorter in place loses its stale nodes here (``decoded``
        and ``copy`` look before they extend), and new full blocks are added as they appear.
        Each node counts the slots through it and leaves the trie with the last one.
        """
        tokens, n = slot.tokens, self._block
        if slot._of is not tokens:
            self._reset(slot, tokens, [])
        path, full = slot._path, len(tokens) // n
        if len(path) > full:
            self._cut(slot, full)
        nodes, parent = self._nodes, path[-1] if path else None
        for i in range(len(path) * n, full * n, n):
            key = (parent, tuple(tokens[i : i + n]))
            node = nodes.get(key)
            if node is None:
                node = nodes[key] = Node(key)
            node.n += 1
            path.append(node)
            slot._blocks.append(node.block)
            parent = node
        return path

    def _reset(self, slot: Slot, tokens: list[int], path: list[Node]) -> None:
        """``slot`` now holds ``tokens``, whose first blocks are ``path`` (another slot's nodes)."""
        self._cut(slot, 0)
        for node in path:
            node.n += 1
        slot.tokens, slot._of, slot._path, slot._blocks = tokens, tokens, list(path), [p.block for p in path]

    def _cut(self, slot: Slot, k: int) -> None:
        """Keep the first ``k`` nodes of ``slot``'s path."""
        for node in slot._path[k:]:
            node.n -= 1
            if not node.n:
                del self._nodes[node.key]
        del slot._path[k:], slot._blocks[k:]

    def _prompt_path(self, prompt: Sequence[int], longest: int) -> list[Node]:
        """The nodes of the prompt's leading blocks that some slot holds (none beyond ``longest``)."""
        n, nodes, path = self._block, self._nodes, []
        parent: Node | None = None
        for end in range(n, min(len(prompt), longest) + 1, n):
            parent = nodes.get((parent, tuple(prompt[end - n : end])))
            if parent is None:
                break
            path.append(parent)
        return path

    def _sorted(self) -> tuple[list[Slot], list[int]]:
        """Slots holding tokens in token order, and the prefix each shares with the one before.

        In sorted order the longest prefix a list shares with any other is the one it shares
        with a neighbour, and two lists share ``min`` of what the lists between them share.
        Shared blocks are one object, so the sort skips them at a pointer compare each.
        """
        keys, n = {}, self._block
        for s in self.slots:
            if s.tokens:
                tail = tuple(s.tokens[len(self._path(s)) * n :])  # the path first: it may change
                keys[s] = [*s._blocks, tail]
        order = sorted(keys, key=keys.__getitem__)
        adj = [0] + [_lcp(b.tokens, b._path, a.tokens, a._path, n) for a, b in itertools.pairwise(order)]
        return order, adj

    def cells_used(self) -> int:
        """Distinct KV cells the slots hold: prefixes shared through ``seq_cp`` count once.

        Cells are shared only by copying a common prefix, so this is the number of distinct
        prefixes over all slots (the nodes of a trie of their token lists): sorted, each list
        adds what it does not share with its predecessor.  It is a lower bound when two slots
        evaluated the same prefix separately; the engine evicts more if llama.cpp disagrees.
        Computed after placements only (O(slots x blocks)); decoding just adds its tokens.
        """
        if self._cells is None:
            order, adj = self._sorted()
            self._cells = sum(len(s.tokens) for s in order) - sum(adj)
        return self._cells

    def make_room(self, kv: KVOps, n_tokens: int, n_cells: int) -> None:
        """Drop idle slots' KV, least recently used first, until ``n_tokens`` more cells fit.

        One sort of the slots, then each eviction takes its list out of the sorted order:
        the cells it alone held go, and its neighbours now share what they shared through it.
        """
        if self.kv_tokens() + n_tokens <= n_cells or self.cells_used() + n_tokens <= n_cells:
            return  # the cheap upper bound, or the count kept since the last placement, fits
        order, adj = self._sorted()
        cells = sum(len(s.tokens) for s in order) - sum(adj)
        at = {s: i for i, s in enumerate(order)}
        prev, nxt = list(range(-1, len(order) - 1)), [*range(1, len(order)), -1]
        for slot in sorted((s for s in self.slots if not s.busy and s.tokens), key=lambda s: s.last_used):
            if cells + n_tokens <= n_cells:
                break
            i = at[slot]
            p, q = prev[i], nxt[i]
            after = adj[q] if q >= 0 else 0
            cells -= len(slot.tokens) - max(adj[i], after)
            if q >= 0:
                adj[q], prev[q] = min(adj[i], after), p
            if p >= 0:
                nxt[p] = q
            self.evict(slot, kv)
        self._cells = cells

    def evict_one(self, kv: KVOps) -> bool:
        """Drop the least recently used idle slot's KV; False when no idle slot holds any."""
        idle = [s for s in self.slots if not s.busy and s.tokens]
        if not idle:
            return False
        self.evict(min(idle, key=lambda s: s.last_used), kv)
        return True

    def evict(self, slot: Slot, kv: KVOps) -> None:
        """Drop an idle slot's KV and forget whose it was."""
        kv.seq_rm(slot.seq, 0, -1)
        slot.tokens.clear()
        slot.session = None
        slot.exact = None
        self.changed()

    def clear(self, slot: Slot, kv: KVOps) -> None:
        """Drop all of ``slot``'s KV; its request and session stay (the request starts over or fails)."""
        kv.seq_rm(slot.seq, 0, -1)
        slot.tokens.clear()
        self.changed()

    def decoded(self, slot: Slot, tokens: list[int]) -> None:
        """``tokens`` were decoded into ``slot``'s sequence, each into a new cell."""
        self._grow(slot, tokens)
        self.grew(len(tokens))

    def copy(self, donor: Slot, slot: Slot, start: int, end: int, kv: KVOps) -> None:
        """Share ``donor``'s cells at positions [start, end) with ``slot``, which holds ``start`` tokens.

        ``seq_cp`` shares cells (no new ones), so the cell count stays as it is.
        """
        kv.seq_cp(donor.seq, slot.seq, start, end)
        self._grow(slot, donor.tokens[start:end])

    def _grow(self, slot: Slot, tokens: list[int]) -> None:
        """Extend ``slot.tokens``, and its path once a block fills (cheap: once a decode step)."""
        n = self._block
        if slot._of is not slot.tokens or len(slot.tokens) < len(slot._path) * n:
            self._path(slot)  # set or cut from outside: stale nodes go before the list grows
        slot.tokens.extend(tokens)
        if len(slot.tokens) >= (len(slot._path) + 1) * n:
            self._path(slot)

    def shares_beyond(self, slot: Slot, pos: int) -> bool:
        """Whether another slot may share ``slot``'s cells at positions >= ``pos``.

        Shared cells only come from copying a common prefix and a trim unshares everything
        after it, so a cell at position p is shared only if both token lists agree up to p.
        """
        mine, others = self._path(slot), [o for o in self.slots if o is not slot]
        return any(_lcp(o.tokens, self._path(o), slot.tokens, mine, self._block) > pos for o in others)

    def shift(self, slot: Slot, keep: int, discard: int, kv: KVOps, can_shift: bool) -> list[int]:
        """Context shift: keep ``keep`` tokens, drop the next ``discard``, and move the rest down.

        Returns the tokens to evaluate again (none when the KV was shifted in place).  In
        place means ``seq_rm`` + ``seq_add`` of the tail, which is only right when no other
        sequence shares the tail's cells: a unified cache has one position per cell, so moving
        a shared cell would move another request's token too.  Otherwise, and for memory that
        cannot shift (recurrent), the tail is dropped and re-evaluated at its new positions.
        """
        n = len(slot.tokens)
        kept = slot.tokens[:keep] + slot.tokens[keep + discard :]
        self.changed()
        if can_shift and not self.shares_beyond(slot, keep + discard):
            kv.seq_rm(slot.seq, keep, keep + discard)
            kv.seq_add(slot.seq, keep + discard, n, -discard)
            slot.tokens = kept
            slot.exact = keep if slot.exact is None else min(slot.exact, keep)
            return []
        if kv.seq_rm(slot.seq, keep, -1):
            del slot.tokens[keep:]
            self._path(slot)
            return kept[keep:]
        kv.seq_rm(slot.seq, 0, -1)  # memory that cannot be trimmed (recurrent): start over
        slot.tokens.clear()
        return kept

    def trim_inexact(self, slot: Slot, kv: KVOps) -> None:
        """Keep only exactly evaluated KV for reuse (a shifted tail was computed in another context)."""
        if slot.exact is not None and slot.exact < len(slot.tokens):
            self.changed()
            if not kv.seq_rm(slot.seq, slot.exact, -1):
                kv.seq_rm(slot.seq, 0, -1)
                slot.exact = 0
            del slot.tokens[slot.exact :]
            self._path(slot)
        slot.exact = None

    def release(self, slot: Slot) -> None:
        if slot.request is not None and self._by_request.get(slot.request.id) is slot:
            del self._by_request[slot.request.id]
        slot.request = None
        slot.last_used = time.monotonic()

    def slot_of(self, request: Request) -> Slot | None:
        """O(1) for a placed request; a request set on a slot directly is still found."""
        slot = self._by_request.get(request.id)
        if slot is not None and slot.request is request:
            return slot
        return next((s for s in self.slots if s.request is request), None)


def _lcp(x: Sequence[int], xp: list[Node], y: Sequence[int], yp: list[Node], n: int) -> int:
    """``common_prefix(x, y)`` from their trie paths ``xp``/``yp``, then one block of tokens.

    A node stands for its whole prefix, so the shared blocks are a bisection on identity; the
    block where the lists part is scanned in C (bisecting slices costs more at that size).
    """
    m = min(len(xp), len(yp))
    if not m or xp[0] is not yp[0]:
        k = 0
    elif xp[m - 1] is yp[m - 1]:
        k = m * n
    else:
        lo, hi = 1, m - 1  # xp[:lo] is shared, xp[hi] is not
        while lo < hi:
            mid = (lo + hi) // 2
            if xp[mid] is yp[mid]:
                lo = mid + 1
            else:
                hi = mid
        k = lo * n
    a, b = x[k : k + n], y[k : k + n]
    if not a or not b or a[0] != b[0]:
        return k
    return k + next(compress(count(), map(ne, a, b)), min(len(a), len(b)))


class _Prefixes(dict[Slot, int]):
    """Each slot's prefix shared with a prompt (whose trie path is ``path``), found when asked."""

    def __init__(self, prompt: Sequence[int], path: list[Node], n: int) -> None:
        super().__init__()
        self.prompt, self.path, self.n = prompt, path, n

    def __missing__(self, slot: Slot) -> int:
        self[slot] = shared = _lcp(slot.tokens, slot._path, self.prompt, self.path, self.n)
        return shared
