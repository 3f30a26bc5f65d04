"""Findings as diagnostics (ranges in the negotiated encoding) and the quick fix they carry."""

from __future__ import annotations

import pytest
from lsprotocol import types
from pygls.workspace import PositionCodec, TextDocument

from llamita.lsp.review.diagnostics import SOURCE, quick_fixes, to_diagnostic
from llamita.lsp.review.engine import RawFinding, anchor

TEXT = 'msg = "héllo 👋"; data = open(path)\nprint(data.read())\n'


def document(encoding: types.PositionEncodingKind) -> TextDocument:
    return TextDocument(
        "file:///w/a.py", TEXT, version=3, language_id="python", position_codec=PositionCodec(encoding)
    )


@pytest.mark.parametrize(
    ("encoding", "start", "end"),
    [
        (types.PositionEncodingKind.Utf16, 25, 35),  # 👋 is two UTF-16 units
        (types.PositionEncodingKind.Utf8, 28, 38),  # é is two bytes, 👋 four
        (types.PositionEncodingKind.Utf32, 24, 34),
    ],
)
def test_ranges_follow_the_position_encoding(
    encoding: types.PositionEncodingKind, start: int, end: int
) -> None:
    finding = anchor(
        RawFinding(
            1,
            "error",
            "file is never closed",
            "open(path)",
            "",
        ),
        TEXT,
    )
    assert finding is not None
    diagnostic = to_diagnostic(finding, document(encoding))
    assert diagnostic.range == types.Range(types.Position(0, start), types.Position(0, end))
    assert diagnostic.source == SOURCE and diagnostic.severity == types.DiagnosticSeverity.Error
    assert diagnostic.message == "file is never closed"
    assert diagnostic.data == {"quote": "open(path)"}


def test_replacement_becomes_a_quick_fix() -> None:
    doc = document(types.PositionEncodingKind.Utf16)
    finding = anchor(RawFinding(1, "warning", "m", "open(path)", "open(path, encoding='utf-8')"), TEXT)
    assert finding is not None
    diagnostic = to_diagnostic(finding, doc)
    assert diagnostic.data["replacement"] == "open(path, encoding='utf-8')"
    [action] = quick_fixes(doc, [diagnostic])
    assert action.kind == types.CodeActionKind.QuickFix and action.diagnostics == [diagnostic]
    assert action.edit is not None and action.edit.changes is not None
    assert list(action.edit.changes["file:///w/a.py"]) == [
        types.TextEdit(diagnostic.range, "open(path, encoding='utf-8')")
    ]


def test_no_fix_for_advice_other_sources_or_moved_code() -> None:
    doc = document(types.PositionEncodingKind.Utf16)
    advice = anchor(RawFinding(1, "warning", "m", "open(path)", "Use a context manager to close it."), TEXT)
    assert advice is not None
    assert quick_fixes(doc, [to_diagnostic(advice, doc)]) == []
    fixable = anchor(RawFinding(1, "warning", "m", "open(path)", "open(p)"), TEXT)
    assert fixable is not None
    diagnostic = to_diagnostic(fixable, doc)
    other = types.Diagnostic(diagnostic.range, "m", source="pyright", data=diagnostic.data)
    moved = types.Diagnostic(
        types.Range(types.Position(1, 0), types.Position(1, 10)), "m", source=SOURCE, data=diagnostic.data
    )
    assert quick_fixes(doc, [other, moved]) == []
