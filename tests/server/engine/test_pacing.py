"""The step-time budget: who runs decides how much prompt one step may evaluate."""

from __future__ import annotations

from llamita.server.engine.pacing import FIRST_CHUNK, MIN_CHUNK, Pacing


def test_nothing_is_budgeted_before_a_cost_was_measured() -> None:
    pacing = Pacing()
    assert pacing.step_time(decoding=False, alone=True, now=100.0) is None
    assert pacing.chunk(None) == FIRST_CHUNK
    assert not pacing.long(None)


def test_the_budget_follows_who_runs() -> None:
    pacing = Pacing(step_target=0.3, decode_share=0.25, solo_step_target=2.0, interactive_window=10.0)
    pacing.sec_per_token = 0.001
    assert pacing.step_time(decoding=True, alone=True, now=100.0) == 0.3 * 0.25
    assert pacing.step_time(decoding=False, alone=True, now=100.0) == 2.0
    assert pacing.step_time(decoding=False, alone=False, now=100.0) == 0.3
    pacing.last_interactive = 95.0  # an editor typed 5 s ago: no long steps
    assert pacing.step_time(decoding=False, alone=True, now=100.0) == 0.3
    assert pacing.step_time(decoding=False, alone=True, now=106.0) == 2.0


def test_a_solo_target_below_the_step_target_never_shortens_a_lone_prompt() -> None:
    pacing = Pacing(step_target=0.5, solo_step_target=0.1, sec_per_token=0.001)
    assert pacing.step_time(decoding=False, alone=True, now=0.0) == 0.5
    assert not pacing.long(0.5)
    assert pacing.long(0.6)


def test_chunks_fit_the_target_at_the_learned_cost_and_never_starve() -> None:
    pacing = Pacing(sec_per_token=0.002)
    assert pacing.chunk(0.3) == 150
    assert pacing.chunk(0.001) == MIN_CHUNK


def test_the_cost_is_a_moving_average_of_prompt_steps_only() -> None:
    pacing = Pacing()
    pacing.learn(8, 8.0)  # a decode step: fixed costs, not a prompt rate
    assert pacing.sec_per_token is None
    pacing.learn(100, 1.0)
    assert pacing.sec_per_token == 0.01
    pacing.learn(100, 2.0)
    assert abs(pacing.sec_per_token - (0.7 * 0.01 + 0.3 * 0.02)) < 1e-12
