"""bench/quality.py: seeded stdlib holes, scoring, the table, and the smoke run through the real LSP path."""

from __future__ import annotations

import asyncio

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
    assert quality.score(None, "abc", failed=True).failed
    assert quality.score("abc  ", "abc") == quality.Score(True, True, pytest.approx(0.75), 3)
    partial = quality.score("self.x)", "self.y)")
    assert not partial.exact and partial.accepted == 5 and 0 < partial.similarity < 1


def test_table_has_rows_per_language_and_overall() -> None:
    def hole(language: str, kind: str) -> object:
        return quality.Hole("f:1", kind, "x", 0, "abc", language)

    holes = [hole("python", "single"), hole("python", "multi"), hole("go", "single"), hole("go", "multi")]
    good, failed = quality.score("abc", "abc"), quality.score(None, "abc", failed=True)
    rows = quality.table(holes, {"raw": [failed] * 4, "chat": [good, good, good, failed]})
    groups = [(r["language"], r["kind"], r["mode"]) for r in rows]
    assert groups[:2] == [("python", "single", "raw"), ("python", "single", "chat")]
    assert groups[-2:] == [("all", "all", "raw"), ("all", "all", "chat")] and len(rows) == 14
    overall = {r["mode"]: r for r in rows if r["language"] == r["kind"] == "all"}
    assert overall["raw"]["failed"] == 4 and overall["raw"]["shown"] == 0
    assert overall["chat"]["failed"] == 1 and overall["chat"]["exact"] == 0.75
    assert "failed" in quality.render(rows).split("\n")[0]


def test_modes_and_languages_are_checked() -> None:
    args = quality.parse(["--modes", "chat,native", "--languages", "go"])
    assert args.modes == ("chat", "native") and args.languages == ("go",)
    with pytest.raises(SystemExit):
        quality.parse(["--modes", "fancy"])
    assert quality.parse(["--smoke"]).languages == ("python",)


@pytest.mark.model
def test_smoke_run_prints_both_paths_side_by_side(server, capsys: pytest.CaptureFixture[str]) -> None:
    rows = quality.main(["--url", server.url, "--smoke"])
    # SmolLM2 has no insert capability: native is skipped; raw and chat run side by side.
    assert [(r["language"], r["kind"], r["mode"]) for r in rows] == [
        ("python", "single", "raw"), ("python", "single", "chat"),
        ("python", "multi", "raw"), ("python", "multi", "chat"),
        ("all", "single", "raw"), ("all", "single", "chat"),
        ("all", "multi", "raw"), ("all", "multi", "chat"),
        ("all", "all", "raw"), ("all", "all", "chat"),
    ]  # fmt: skip
    assert all(r["holes"] == 2 for r in rows if r["kind"] != "all")
    assert all(r["failed"] == 0 for r in rows)
    captured = capsys.readouterr()
    assert "smollm2:135m" in captured.out and "accepted/req" in captured.out
    assert "raw = raw FIM template, chat = chat fill-in" in captured.out
    assert "skipped native" in captured.err
    # The chat fill-in answers every hole on SmolLM2 (it writes something); quality is not asserted here.
    assert all(r["shown"] > 0 for r in rows if r["mode"] == "chat")


def test_a_transport_error_is_retried_twice_then_counted_as_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    class Client:
        def text_document_did_open(self, params: object) -> None: ...
        def text_document_did_close(self, params: object) -> None: ...

    replies = iter([(None, "transport"), (None, "transport"), ("x)", ""), (None, "transport")])
    calls: list[str] = []

    async def ask(session: object, uri: str, hole: object, timeout: float) -> tuple[str | None, str]:
        calls.append(uri)
        return next(replies)

    monkeypatch.setattr(quality, "_ask", ask)
    monkeypatch.setattr(quality, "RETRY_PAUSE", 0)
    session = quality.Session(Client())  # type: ignore[arg-type]
    hole = quality.Hole("f:1", "single", "f(\n", 2, "x)", "python")
    assert asyncio.run(quality.complete(session, "file:///a.py", hole)) == ("x)", False)  # third try
    replies = iter([(None, "transport")] * 3)
    assert asyncio.run(quality.complete(session, "file:///a.py", hole)) == (None, True)
    replies = iter([(None, "error")])
    assert asyncio.run(quality.complete(session, "file:///a.py", hole)) == (None, True)  # not retried
    assert len(calls) == 3 + 3 + 1
