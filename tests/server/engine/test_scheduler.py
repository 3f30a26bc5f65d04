from __future__ import annotations

import pytest

from llamita.server.engine.request import Priority, Request, RequestStatus, SamplingParams
from llamita.server.engine.scheduler import QUEUE_FULL, OwnerQueueFull, QueueFull, Scheduler

from .test_cache import FakeKV


def req(
    n: int, session: str | None = None, priority: Priority = Priority.NORMAL, base: int = 1000
) -> Request:
    return Request(
        prompt=list(range(base, base + n)),
        params=SamplingParams(),
        emit=lambda e: None,
        session=session,
        priority=priority,
    )


def test_decoding_tokens_first_then_shortest_prompt_first() -> None:
    sched, kv = Scheduler(n_slots=3, n_batch=64), FakeKV()
    long, short = req(200), req(10)
    decoding = req(5)
    for r in (decoding, long, short):
        sched.add_request(r)
    sched.admit(kv)
    # Finish the first request's prompt so it decodes.
    decoding.status, decoding.n_past, decoding.pending = RequestStatus.DECODING, 5, 42
    out = sched.schedule()
    assert [(c.request, len(c.tokens)) for c in out.chunks] == [(decoding, 1), (short, 10), (long, 53)]
    assert out.n_tokens == 64
    assert [c.logits for c in out.chunks] == [True, True, False]


def test_after_decode_advances_prompt_and_records_kv() -> None:
    sched, kv = Scheduler(n_slots=1, n_batch=8), FakeKV()
    r = req(12)
    sched.add_request(r)
    sched.admit(kv)
    out = sched.schedule()
    sched.after_decode(out)
    assert r.n_past == 8 and sched.slots.slots[0].tokens == r.prompt[:8]
    out = sched.schedule()
    assert out.chunks[0].pos == 8 and out.chunks[0].logits


def test_waiting_beyond_slots_and_queue_limit() -> None:
    sched, kv = Scheduler(n_slots=1, n_batch=8, max_queue=2), FakeKV()
    a, b, c = req(3), req(3), req(3)
    sched.add_request(a)
    sched.add_request(b)
    with pytest.raises(QueueFull, match="maximum pending requests exceeded"):
        sched.add_request(c)
    assert str(QueueFull()) == QUEUE_FULL
    assert sched.admit(kv) == [a]
    sched.finish(a, RequestStatus.FINISHED_STOPPED)
    assert sched.admit(kv) == [b]


def test_finish_releases_slot_but_keeps_its_tokens() -> None:
    sched, kv = Scheduler(n_slots=1, n_batch=8), FakeKV()
    r = req(4, session="s")
    sched.add_request(r)
    sched.admit(kv)
    sched.after_decode(sched.schedule())
    sched.finish(r, RequestStatus.FINISHED_ABORTED)
    slot = sched.slots.slots[0]
    assert not slot.busy and slot.tokens == r.prompt and slot.session == "s"
    assert sched.of_session("s") == []


def test_prefill_budget_caps_prompt_tokens_but_not_decoding() -> None:
    sched, kv = Scheduler(n_slots=3, n_batch=512), FakeKV()
    decoding, cold = req(5), req(400)
    sched.add_request(decoding)
    sched.add_request(cold)
    sched.admit(kv)
    decoding.status, decoding.n_past, decoding.pending = RequestStatus.DECODING, 5, 7
    out = sched.schedule(prefill_budget=32)
    assert [(c.request, len(c.tokens)) for c in out.chunks] == [(decoding, 1), (cold, 32)]


def test_adopt_takes_over_an_aborted_requests_progress() -> None:
    sched, kv = Scheduler(n_slots=2, n_batch=64), FakeKV()
    old, new = req(40), req(40)
    new.prompt = [*old.prompt[:39], 7]  # the editor typed one more character
    sched.add_request(old)
    sched.admit(kv)
    sched.after_decode(sched.schedule())  # old evaluated its whole prompt
    sched.add_request(new)
    sched.admit(kv)  # placed on the free sequence (old still runs), copying what it can
    donor = sched.slots.slot_of(old)
    assert donor is not None
    new.n_past = new.n_cached = 0
    sched.slots.slot_of(new).tokens.clear()
    sched.finish(old, RequestStatus.FINISHED_ABORTED)
    sched.adopt(donor, kv)
    assert new.n_past == 39 and new.n_cached == 39
    assert ("cp", donor.seq, sched.slots.slot_of(new).seq, 0, 39) in kv.ops


def test_more_decoders_than_n_batch_take_turns() -> None:
    sched, kv = Scheduler(n_slots=5, n_batch=2), FakeKV()
    requests = [req(3) for _ in range(5)]
    for r in requests:
        sched.add_request(r)
    sched.admit(kv)
    for r in requests:
        r.status, r.n_past, r.pending = RequestStatus.DECODING, 3, 7
    seen: list[Request] = []
    for _ in range(5):
        out = sched.schedule()
        assert out.n_tokens == 2 and all(c.decode for c in out.chunks)
        seen += [c.request for c in out.chunks]
    assert all(seen.count(r) == 2 for r in requests)  # everyone got the same share


def test_a_replay_after_a_context_shift_is_scheduled_like_a_prompt() -> None:
    sched, kv = Scheduler(n_slots=1, n_batch=4), FakeKV()
    r = req(3)
    sched.add_request(r)
    sched.admit(kv)
    r.status, r.n_past = RequestStatus.DECODING, 3
    r.replay = [5, 6, 7, 8, 9, 42]  # the kept tail, then the sampled token
    out = sched.schedule()
    assert [(c.tokens, c.logits, c.decode) for c in out.chunks] == [([5, 6, 7, 8], False, False)]
    sched.after_decode(out)
    out = sched.schedule()
    assert [(c.tokens, c.pos, c.logits) for c in out.chunks] == [([9, 42], 4, True)]
    sched.after_decode(out)
    assert r.replay == [] and sched.slots.slots[0].tokens == [5, 6, 7, 8, 9, 42]


def test_decoded_tokens_are_counted_as_new_cells_without_a_recount() -> None:
    sched, kv = Scheduler(n_slots=2, n_batch=64), FakeKV()
    a, b = req(10), req(10)
    for r in (a, b):
        sched.add_request(r)
    sched.admit(kv)
    assert sched.slots.cells_used() == 0
    sched.after_decode(sched.schedule())  # both prompts (the same tokens, evaluated twice)
    assert sched.slots.cells_used() == 20
    sched.slots.changed()  # a recount sees one prompt: a lower bound, llama.cpp has the last word
    assert sched.slots.cells_used() == 10


# ---- priority classes ----------------------------------------------------------------------


def test_an_interactive_request_is_admitted_ahead_of_older_chat_work() -> None:
    sched, kv = Scheduler(n_slots=4, n_batch=64, max_running=1), FakeKV()
    running, chat, batch = req(50, base=1), req(50, base=2000), req(50, Priority.BATCH, base=3000)
    sched.add_request(running)
    sched.admit(kv)
    keystroke = req(8, "editor", Priority.INTERACTIVE, base=5000)
    for r in (batch, chat, keystroke):
        sched.add_request(r)
    # The one running place is taken, yet the keystroke gets the place kept for it.
    assert sched.admit(kv) == [keystroke]
    sched.finish(running, RequestStatus.FINISHED_STOPPED)
    sched.finish(keystroke, RequestStatus.FINISHED_STOPPED)
    assert sched.admit(kv) == [chat]  # then NORMAL before BATCH, whatever arrived first
    sched.finish(chat, RequestStatus.FINISHED_STOPPED)
    assert sched.admit(kv) == [batch]


def test_only_one_place_beyond_max_running_and_only_for_interactive_work() -> None:
    sched, kv = Scheduler(n_slots=4, n_batch=64, max_running=1), FakeKV()
    keys = [req(8, f"e{i}", Priority.INTERACTIVE, base=1000 * (i + 1)) for i in range(3)]
    chat = req(8, base=9000)
    for r in (*keys, chat):
        sched.add_request(r)
    assert sched.admit(kv) == keys[:2]
    assert list(sched.waiting) == [keys[2], chat]


def test_an_interactive_prompt_goes_in_whole_and_alone_then_others_get_every_other_step() -> None:
    sched, kv = Scheduler(n_slots=4, n_batch=512), FakeKV()
    review = req(400, priority=Priority.BATCH, base=1)
    sched.add_request(review)
    sched.admit(kv)
    sched.after_decode(sched.schedule(prefill_budget=32))  # the review is under way
    keystroke, later = (
        req(100, "a", Priority.INTERACTIVE, base=5000),
        req(90, "b", Priority.INTERACTIVE, base=7000),
    )
    for r in (keystroke, later):
        sched.add_request(r)
    sched.admit(kv)
    out = sched.schedule(prefill_budget=32)
    # The shortest interactive prompt whole despite the budget, the next one within the budget,
    # and nothing of the review.
    assert [(c.request, len(c.tokens)) for c in out.chunks] == [(later, 90), (keystroke, 32)]
    sched.after_decode(out)
    out = sched.schedule(prefill_budget=32)
    # A step that held the review back is followed by one that gives it its usual budget
    # beside the next keystroke's whole prompt.
    assert [(c.request, len(c.tokens)) for c in out.chunks] == [(keystroke, 68), (review, 32)]


def test_the_review_gets_a_share_while_keystrokes_keep_coming() -> None:
    sched, kv = Scheduler(n_slots=8, n_batch=512), FakeKV()
    review = req(400, priority=Priority.BATCH, base=1)
    sched.add_request(review)
    sched.admit(kv)
    steps_with_review = 0
    for i in range(6):
        keystroke = req(20, f"e{i}", Priority.INTERACTIVE, base=10_000 + 100 * i)
        sched.add_request(keystroke)
        sched.admit(kv)
        out = sched.schedule(prefill_budget=64)
        steps_with_review += any(c.request is review for c in out.chunks)
        sched.after_decode(out)
        for c in out.chunks:
            if c.logits and c.request is not review:
                sched.finish(c.request, RequestStatus.FINISHED_STOPPED)
    assert steps_with_review == 3


# ---- fair sharing between owners -----------------------------------------------------------


def owned(owner: str | None, n: int = 4, priority: Priority = Priority.NORMAL, base: int = 1000) -> Request:
    r = req(n, priority=priority, base=base)
    r.owner = owner
    return r


def test_one_owners_burst_does_not_starve_anothers_single_request() -> None:
    sched, kv = Scheduler(n_slots=4, n_batch=64, max_running=2), FakeKV()
    burst = [owned("alice", base=100 * i) for i in range(50)]
    for r in burst:
        sched.add_request(r)
    assert sched.admit(kv) == burst[:2]
    bob = owned("bob", base=9000)
    sched.add_request(bob)
    assert sched.admit(kv) == []  # no free place yet
    sched.finish(burst[0], RequestStatus.FINISHED_STOPPED)
    assert sched.admit(kv) == [bob]  # the next free place, ahead of 48 older requests
    sched.finish(burst[1], RequestStatus.FINISHED_STOPPED)
    assert sched.admit(kv) == [burst[2]]  # then alice's, oldest first


def test_places_rotate_between_owners_with_work_waiting() -> None:
    sched, kv = Scheduler(n_slots=2, n_batch=64, max_running=1), FakeKV()
    a = [owned("a", base=1000 + 10 * i) for i in range(3)]
    b = [owned("b", base=2000 + 10 * i) for i in range(3)]
    c = [owned("c", base=3000)]
    for r in (*a, *b, *c):
        sched.add_request(r)
    order = []
    while sched.waiting or sched.running:
        order += sched.admit(kv)
        sched.finish(sched.running[0], RequestStatus.FINISHED_STOPPED)
    assert [r.owner for r in order] == ["a", "b", "c", "a", "b", "a", "b"]
    assert [r for r in order if r.owner == "a"] == a  # each owner's own requests in arrival order


def test_the_owner_with_fewest_running_requests_goes_first() -> None:
    sched, kv = Scheduler(n_slots=8, n_batch=64, max_running=3), FakeKV()
    a1, a2, b1 = owned("a", base=1), owned("a", base=100), owned("b", base=200)
    for r in (a1, a2, b1):
        sched.add_request(r)
    assert sched.admit(kv) == [a1, b1, a2]
    sched.finish(b1, RequestStatus.FINISHED_STOPPED)
    a3, b2 = owned("a", base=300), owned("b", base=400)
    sched.add_request(a3)
    sched.add_request(b2)
    assert sched.admit(kv) == [b2]  # a holds two places, b none: b's, though a's is older


def test_one_owner_and_anonymous_requests_keep_arrival_order() -> None:
    sched, kv = Scheduler(n_slots=2, n_batch=64, max_running=1), FakeKV()
    requests = [owned(None, base=100 * i) for i in range(4)]
    for r in requests:
        sched.add_request(r)
    order = []
    while sched.waiting or sched.running:
        order += sched.admit(kv)
        sched.finish(sched.running[0], RequestStatus.FINISHED_STOPPED)
    assert order == requests


def test_priority_classes_come_before_fairness() -> None:
    sched, kv = Scheduler(n_slots=4, n_batch=64, max_running=1), FakeKV()
    running = owned("a", base=1)
    sched.add_request(running)
    sched.admit(kv)
    batch_b = owned("b", priority=Priority.BATCH, base=100)
    chat_a = owned("a", base=200)
    keystroke_a = owned("a", priority=Priority.INTERACTIVE, base=300)
    for r in (batch_b, chat_a, keystroke_a):
        sched.add_request(r)
    assert sched.admit(kv) == [keystroke_a]  # the interactive place, though a already runs
    sched.finish(running, RequestStatus.FINISHED_STOPPED)
    sched.finish(keystroke_a, RequestStatus.FINISHED_STOPPED)
    assert sched.admit(kv) == [chat_a]  # NORMAL before b's BATCH, though b was served less


def test_an_owners_queued_requests_are_capped_and_the_refusal_says_when_to_retry() -> None:
    sched, kv = Scheduler(n_slots=1, n_batch=64, max_queue=10, max_queued_per_owner=2), FakeKV()
    a = [owned("a", base=100 * i) for i in range(3)]
    sched.add_request(a[0])
    sched.admit(kv)  # running: not counted against the cap
    sched.add_request(a[1])
    sched.add_request(a[2])
    with pytest.raises(OwnerQueueFull, match=r"too many queued requests for this API key \(limit 2\)") as e:
        sched.add_request(owned("a", base=900))
    assert isinstance(e.value, QueueFull) and e.value.headers == {"Retry-After": "1"}
    sched.add_request(owned("b", base=950))  # another owner still gets in
    # Requests handed to the engine but not yet to the scheduler count too.
    sched.finish(a[2], RequestStatus.FINISHED_ABORTED)
    with pytest.raises(OwnerQueueFull):
        sched.check_room("a", [owned("a", base=990)])
    sched.check_room("a", [owned("b", base=990)])
