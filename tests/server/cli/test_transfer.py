"""``llamita pull``/``push`` rendering of the NDJSON progress stream (server/cli/transfer.py)."""

from __future__ import annotations

import io

from llamita.server.cli.transfer import ProgressView


def _events(verb: str) -> list[dict[str, object]]:
    digest = "sha256:" + "ab" * 32
    return [
        {"status": f"{verb} manifest"},
        {"status": f"{verb} abababababab", "digest": digest, "total": 2_000_000, "completed": 500_000},
        {"status": f"{verb} abababababab", "digest": digest, "total": 2_000_000, "completed": 2_000_000},
        {"status": "success"},
    ]


def test_progress_bars_on_a_terminal() -> None:
    out = io.StringIO()
    view = ProgressView(out, tty=True)
    for event in _events("pulling"):
        view.update(event)
    view.close()
    text = out.getvalue()
    assert text.startswith("pulling manifest\n") and text.endswith("success\n")
    assert "pulling abababababab: 100% ▕" in text and "2.00M" in text and "B/s" in text


def test_plain_lines_without_a_terminal() -> None:
    out = io.StringIO()
    view = ProgressView(out, tty=False)
    for event in _events("pushing"):
        view.update(event)
    view.close()
    assert out.getvalue() == "pushing manifest\npushing abababababab: 100% 2 MB\nsuccess\n"
