"""Review findings as LSP diagnostics and quick fixes.

The review engine works in ``str`` offsets; this module converts them through the document's negotiated
position encoding (UTF-16 for VS Code, UTF-8 for Neovim...), so ranges are right on non-ASCII lines. The
replacement text travels in ``Diagnostic.data``: the code-action request hands the diagnostic back, and
the fix is offered only while the range still holds the quoted code.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types
from pygls.workspace import TextDocument

from .engine import Finding

SOURCE = "llamita"
_SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "info": types.DiagnosticSeverity.Information,
    "hint": types.DiagnosticSeverity.Hint,
}


def to_diagnostic(finding: Finding, document: TextDocument) -> types.Diagnostic:
    data: dict[str, Any] = {"quote": finding.quote}
    if finding.replacement is not None:
        data["replacement"] = finding.replacement
    return types.Diagnostic(
        range=types.Range(
            start=document.client_position_at_offset(finding.start),
            end=document.client_position_at_offset(finding.end),
        ),
        message=finding.message,
        severity=_SEVERITY.get(finding.severity, types.DiagnosticSeverity.Warning),
        source=SOURCE,
        code="review",
        data=data,
    )


def quick_fixes(document: TextDocument, diagnostics: list[types.Diagnostic]) -> list[types.CodeAction]:
    """One quick fix per llamita diagnostic whose suggestion replaces code that is still there."""
    actions: list[types.CodeAction] = []
    for diagnostic in diagnostics:
        data = diagnostic.data if isinstance(diagnostic.data, dict) else {}
        replacement = data.get("replacement")
        if diagnostic.source != SOURCE or not isinstance(replacement, str):
            continue
        if document.text_in_client_range(diagnostic.range) != data.get("quote"):
            continue
        first_line = replacement.strip().split("\n", 1)[0]
        title = f"llamita: replace with `{first_line[:60]}`"
        edit = types.WorkspaceEdit(
            changes={document.uri: [types.TextEdit(range=diagnostic.range, new_text=replacement)]}
        )
        actions.append(
            types.CodeAction(
                title=title, kind=types.CodeActionKind.QuickFix, diagnostics=[diagnostic], edit=edit
            )
        )
    return actions
