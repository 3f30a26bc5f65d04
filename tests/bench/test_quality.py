"""bench/quality.py: seeded holes from the stdlib, scoring, and the smoke run through the real LSP path."""

from __future__ import annotations

import pytest
from benchkit import bench_module

quality = bench_module("quality")


def test_holes_are_seeded_and_put_back_give_the_original_code() -> None:
    holes = quality.cut_holes(6, seed=3)
    assert holes == quality.cut_holes(6, seed=3)
    assert holes != quality.cut_holes(6, seed=4)
    assert [h.kind for h in holes] == ["single", "multi"] * 3
    for hole in holes:
        restored = hole.text[: hole.offset] + hole.truth + hole.text[hole.offset :]
        path = next(p for p in quality.stdlib_files() if p.name == hole.name.split(":")[0])
        lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
        assert all(line.rstrip() in lines or not line.strip() for line in restored.split("\n"))
        assert hole.truth.strip()


def test_scores() -> None:
    assert quality.score(None, "abc") == quality.Score(False, False, 0.0, 0)
    assert quality.score("abc  ", "abc") == quality.Score(True, True, pytest.approx(0.75), 3)
    partial = quality.score("self.x)", "self.y)")
    assert not partial.exact and partial.accepted == 5 and 0 < partial.similarity < 1


@pytest.mark.model
def test_smoke_run_prints_both_paths_side_by_side(server, capsys: pytest.CaptureFixture[str]) -> None:
    rows = quality.main(["--url", server.url, "--smoke"])
    assert [(r["mode"], r["kind"]) for r in rows] == [
        ("raw", "single"), ("chat", "single"), ("raw", "multi"), ("chat", "multi")
    ]  # fmt: skip
    assert all(r["holes"] == 2 for r in rows)
    out = capsys.readouterr().out
    assert "smollm2:135m" in out and "accepted/req" in out
    # The chat fill-in answers every hole on SmolLM2 (it writes something); quality is not asserted here.
    assert all(r["shown"] > 0 for r in rows if r["mode"] == "chat")
