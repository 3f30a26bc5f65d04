"""bench/sidebyside.py: fim_load command lines, reading its JSON back, and the figures' verdicts."""

from __future__ import annotations

import json
import math
from pathlib import Path

from benchkit import bench_module

sbs = bench_module("sidebyside")


def summary(**fields: object) -> dict:
    base = {
        "sent": 10, "answered": 5, "completed": 4, "cancelled": 6, "tok_s": 20.0,
        "ttft_ms": {"p50": 100.0, "p95": 400.0}, "tline_ms": {"p50": 200.0, "p95": 450.0},
        "goodput_per_s": 1.5, "prompt_eval_per_req": 90.0, "cache_frac": None,
    }  # fmt: skip
    return base | fields


def test_only_llamita_gets_the_session_header(tmp_path: Path) -> None:
    phase = sbs.Phase("typing16", ("--mode", "typing"), session_header=True)
    ours = sbs.fim_load_argv(Path("f.py"), "a=ollama@u", phase, tmp_path / "a.json", ollama=True)
    peer = sbs.fim_load_argv(Path("f.py"), "b=llama-server@u", phase, tmp_path / "b.json", ollama=False)
    assert ours[1:4] == ["f.py", "--compare", "a=ollama@u"]
    assert ours[-1] == "--session-header" and "--session-header" not in peer
    assert peer[-2:] == ["--json", str(tmp_path / "b.json")]


def test_the_subprocess_bound_grows_with_the_editor_counts() -> None:
    one = sbs.phase_timeout(sbs.Phase("p", ("--editors", "4", "--duration", "60")))
    two = sbs.phase_timeout(sbs.Phase("p", ("--editors", "1,8", "--duration", "60")))
    assert 60 < one < two


def test_summaries_are_keyed_by_server_phase_label_and_editors(tmp_path: Path) -> None:
    path = tmp_path / "ls-np1-typing16.json"
    phases = [{"backend": "ls-np1", "editors": n, "summary": summary(sent=n)} for n in (1, 8)]
    path.write_text(json.dumps({"phases": phases}))
    loaded = sbs.load([path])
    assert set(loaded) == {("ls-np1", "typing16", 1), ("ls-np1", "typing16", 8)}
    assert loaded[("ls-np1", "typing16", 8)]["sent"] == 8


def test_a_ratio_check_passes_on_its_bound_and_fails_below() -> None:
    check = sbs.Check("burst", 8, "tok/s", "llamita", "ls", ">=", 1.1)
    good = {("llamita", "burst", 8): summary(tok_s=22.0), ("ls", "burst", 8): summary(tok_s=20.0)}
    bad = good | {("llamita", "burst", 8): summary(tok_s=21.0)}
    assert math.isclose(check.ratio(good), 1.1) and check.passed(good) is True
    assert check.passed(bad) is False
    assert check.target() == "llamita/ls ≥ 1.1"


def test_an_absolute_check_bounds_our_value_only() -> None:
    check = sbs.Check("typing16", 4, "tline95", "llamita", "ls", "<=", 500, absolute=True)
    s = {
        ("llamita", "typing16", 4): summary(),
        ("ls", "typing16", 4): summary(tline_ms={"p50": 1, "p95": 9000}),
    }
    assert check.passed(s) is True
    assert check.target() == "llamita ≤ 500 ms"


def test_a_peer_that_answered_nothing_loses_and_a_missing_phase_is_not_judged() -> None:
    check = sbs.Check("typing64", 4, "answered", "llamita", "ls", ">=", 20)
    s = {("llamita", "typing64", 4): summary(answered=3), ("ls", "typing64", 4): summary(answered=0)}
    assert check.ratio(s) == math.inf and check.passed(s) is True
    assert check.passed({("llamita", "typing64", 4): summary()}) is None
    assert "| ∞ |" in sbs.checks_table([check], s)


def test_the_report_has_a_row_per_server_and_one_per_figure() -> None:
    s = {("llamita", "burst", 1): summary(), ("ls", "burst", 1): summary(tok_s=10.0)}
    checks = [sbs.Check("burst", 1, "tok/s", "llamita", "ls", ">=", 1.1)]
    text = sbs.report(s, ["llamita", "ls"], checks, "t")
    assert "| llamita | burst | 1 | 10 | 5 |" in text and "| ls | burst | 1 |" in text
    assert "| 2.00 | llamita/ls ≥ 1.1 | **yes** |" in text
