"""Server-side debounce: fixed, explicit requests, and the adaptive delay."""

from __future__ import annotations

import pytest

from llamita.lsp.completion.debounce import MAX_DELAY, Debouncer


def test_fixed_delay() -> None:
    debouncer = Debouncer(base_ms=200, adaptive=False)
    for t in (0.0, 0.05, 0.1):
        debouncer.record_request(t)
    assert debouncer.delay() == pytest.approx(0.2)
    assert debouncer.delay(invoked=True) == 0.0
    assert Debouncer(base_ms=0).delay() == 0.0


def test_adaptive_follows_typing_speed() -> None:
    fast, slow = Debouncer(150), Debouncer(150)
    for i in range(10):
        fast.record_request(i * 0.08)
        slow.record_request(i * 0.3)
    assert fast.delay() == pytest.approx(2.5 * 0.08)
    assert slow.delay() == pytest.approx(2.5 * 0.3)
    assert fast.delay(line_end=True) < fast.delay()


def test_adaptive_subtracts_model_latency_within_bounds() -> None:
    debouncer = Debouncer(150)
    for i in range(5):
        debouncer.record_request(i * 0.4)
    before = debouncer.delay()
    debouncer.record_latency(0.6)
    assert debouncer.delay() == pytest.approx(before - 0.3)
    debouncer.record_latency(10.0)
    assert debouncer.delay() == pytest.approx(0.05)  # never below a third of the base
    assert debouncer.delay() <= MAX_DELAY


def test_pauses_are_not_typing_intervals() -> None:
    debouncer = Debouncer(150)
    debouncer.record_request(0.0)
    debouncer.record_request(30.0)
    assert debouncer.delay() == pytest.approx(0.15)  # no interval recorded: the base delay
    debouncer.configure(300, adaptive=False)
    assert debouncer.delay() == pytest.approx(0.3)
