"""bench/peers.py: the issue's workloads, and that fim_load.py accepts them as they are written."""

from __future__ import annotations

import importlib
import importlib.util
import sys

import pytest
from benchkit import BENCH, bench_module

peers = bench_module("peers")


def test_typing_means_both_windows_and_an_unknown_phase_is_refused() -> None:
    assert peers.selected("burst,typing") == ["burst", "typing16", "typing64"]
    assert peers.selected("typing64,typing") == ["typing64", "typing16"]
    with pytest.raises(SystemExit, match="unknown phase"):
        peers.selected("burst,chat")


def test_the_workloads_are_the_issues() -> None:
    a = peers.parse_args(["--llama-server", "x"])
    burst, typing16, typing64 = peers.phases(a)
    assert " ".join(burst.args).startswith(
        "--mode burst --editors 1,8 --requests 4 --prefix-lines 16 --suffix-lines 4"
    )
    # Editors send their identity in every phase, as our language server does.
    assert burst.session_header and typing16.session_header and typing64.session_header
    t16 = " ".join(typing16.args)
    assert "--editors 4 --cps 6 --duration 60.0 --layout stable --prefix-lines 16 --suffix-lines 4" in t16
    assert "--prefix-lines 64" in " ".join(typing64.args)
    assert "--slo-ms 2000.0" in t16 and "--num-predict 32" in t16 and "--seed 1" in t16


def test_the_checks_follow_the_editor_counts() -> None:
    a = peers.parse_args(["--burst-editors", "1,2", "--typing-editors", "2"])
    got = {(c.phase, c.editors, c.metric) for c in peers.checks(a)}
    assert got == {
        ("burst", 1, "tok/s"), ("burst", 2, "tok/s"), ("burst", 2, "ttft95"),
        ("typing16", 2, "answered"), ("typing64", 2, "answered"), ("typing16", 2, "tline95"),
    }  # fmt: skip


FIM_LOAD = BENCH.parents[1] / "shared" / "bench" / "fim_load.py"


@pytest.mark.skipif(not FIM_LOAD.is_file(), reason="the shared fim_load.py is not beside this checkout")
def test_fim_load_parses_every_phase(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("fim_load_for_test", FIM_LOAD)
    fim_load = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, fim_load)  # its dataclasses look their module up
    spec.loader.exec_module(fim_load)
    for phase in peers.phases(peers.parse_args([])):
        args = fim_load.parse_args(
            ["--compare", "a=ollama@http://127.0.0.1:1", *phase.args, "--session-header"]
        )
        assert args.layout == ("stable" if phase.label.startswith("typing") else "psm")
