"""Repository context: definitions first, then snippets, within a token budget, in a stable order."""

from __future__ import annotations

from pathlib import Path

import pytest

from llamita.lsp.completion.context import OtherFile
from llamita.lsp.completion.repocontext import (
    Piece,
    RepoContext,
    display_path,
    files,
    gather,
    import_head,
    piece_cost,
    render_comments,
    select,
)
from llamita.lsp.tokens import estimate_tokens

UTIL = '''"""Helpers."""


def helper(x: int) -> int:
    """Double x."""
    return 2 * x


def unrelated(s: str) -> str:
    return s.strip()


class Config:
    debug = False
'''
MAIN = "from pkg.util import helper, unrelated\nimport os\n\n\ndef main():\n    value = helper(3)\n    "
NOTES = "def report(value):\n    total = helper(value) + 1\n    return total\n"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg/__init__.py").write_text("")
    (tmp_path / "pkg/util.py").write_text(UTIL)
    (tmp_path / "main.py").write_text(MAIN)
    return tmp_path


def _gather(root: Path, before: str = MAIN, budget: int = 384, share: float = 0.5) -> RepoContext:
    return gather(
        before=before,
        path=str(root / "main.py"),
        root=str(root),
        language_id="python",
        others=[OtherFile("notes.py", NOTES, 0)],
        budget=budget,
        definition_share=share,
    )


def test_definitions_of_used_imports_and_snippets_of_other_files(workspace: Path) -> None:
    context = _gather(workspace)
    assert [(p.path, p.kind, p.text.split("\n")[0]) for p in context.pieces] == [
        ("notes.py", "snippet", "def report(value):"),
        ("pkg/util.py", "definition", "def helper(x: int) -> int:"),
        ("pkg/util.py", "definition", "def unrelated(s: str) -> str:"),
    ]
    assert context.repo == workspace.name
    text = render_comments(context, "python")
    assert text.startswith("# Path: notes.py\n# def report(value):\n")
    assert '# Path: pkg/util.py\n# def helper(x: int) -> int:\n#     """Double x."""\n' in text
    assert "\n# ...\n# def unrelated" in text  # two pieces of one file, one header
    assert "Config" not in text  # not imported


@pytest.mark.parametrize("budget", [0, 20, 40, 60, 100, 384])
def test_budget_is_respected(workspace: Path, budget: int) -> None:
    text = render_comments(_gather(workspace, budget=budget), "python")
    assert estimate_tokens(text) <= budget
    assert (text == "") == (budget == 0) or budget < 40  # below ~40 tokens nothing may fit


def test_used_definitions_come_first_within_their_share(workspace: Path) -> None:
    helper_only = _gather(workspace, budget=30, share=1.0)
    assert [p.text.split("(")[0] for p in helper_only.pieces] == ["def helper"]  # used near the cursor
    no_share = _gather(workspace, budget=384, share=0.0)
    assert {p.kind for p in no_share.pieces} == {"snippet"}


def test_byte_identical_while_typing_on_a_line(workspace: Path) -> None:
    first = render_comments(_gather(workspace), "python")
    for typed in ("r", "re", "ret", "return "):
        assert render_comments(_gather(workspace, MAIN + typed), "python") == first


def test_select_stable_order_and_no_overlaps() -> None:
    defs = [
        Piece("z.py", 10, 14, "def z(): ...", "definition"),
        Piece("a.py", 0, 3, "def a(): ...", "definition"),
    ]
    snips = [
        Piece("z.py", 12, 20, "overlaps z", "snippet"),
        Piece("m.py", 5, 9, "m snippet", "snippet"),
        Piece("a.py", 20, 25, "later in a", "snippet"),
    ]
    chosen = select(defs, snips, budget=200, definition_share=0.5)
    assert [(p.path, p.start) for p in chosen] == [("a.py", 0), ("a.py", 20), ("m.py", 5), ("z.py", 10)]
    assert select(defs, snips, budget=0, definition_share=0.5) == ()
    cheap = select(defs, snips, budget=piece_cost(defs[0]) * 2, definition_share=0.5)
    assert [(p.path, p.kind) for p in cheap] == [("m.py", "snippet"), ("z.py", "definition")]  # share: one


def test_files_groups_pieces_by_path() -> None:
    context = RepoContext(
        (
            Piece("a.py", 0, 1, "A = 1", "definition"),
            Piece("a.py", 5, 6, "B = 2", "snippet"),
            Piece("b.ts", 0, 1, "x", "snippet"),
        )
    )
    assert files(context, "// ...") == [("a.py", "A = 1\n// ...\nB = 2"), ("b.ts", "x")]
    assert render_comments(context, "typescript").startswith("// Path: a.py\n// A = 1\n// ...\n// B = 2\n")


def test_import_head_and_display_path(tmp_path: Path) -> None:
    before = "import os\nfrom a import (\n  b,\n)\n" + "x = 1\n" * 40 + "y = "
    head = import_head(before)
    assert head.startswith("import os\nfrom a import (\n  b,\n)\n") and head.count("\n") < 20
    assert import_head("x = 1\ny") == ""
    assert display_path(tmp_path / "pkg" / "u.py", str(tmp_path)) == "pkg/u.py"
    assert display_path("/elsewhere/u.py", str(tmp_path)) == "/elsewhere/u.py"


def test_unsupported_language_still_gets_snippets(workspace: Path) -> None:
    context = gather(
        before="value = helper(1)\n",
        path=str(workspace / "main.go"),
        root=str(workspace),
        language_id="go",
        others=[OtherFile("notes.py", NOTES, 0)],
        budget=384,
        definition_share=0.5,
    )
    assert [p.kind for p in context.pieces] == ["snippet"]


def test_module_imports_bring_the_members_used_through_them(workspace: Path) -> None:
    before = "from pkg import util\n\n\ndef main():\n    return util.helper(3)\n    "
    context = _gather(workspace, before, share=1.0)
    assert [(p.path, p.text.split("\n")[0]) for p in context.pieces if p.kind == "definition"] == [
        ("pkg/util.py", "def helper(x: int) -> int:")
    ]  # util.unrelated is not used: a whole module would be too much


def test_typescript_relative_imports(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src/math.ts").write_text(
        "export function add(a: number, b: number): number {\n  return a + b;\n}\nexport const PI = 3.14;\n"
    )
    before = "import { add, PI as pi } from './math';\n\nconst total = add(1, 2);\n"
    context = gather(
        before=before,
        path=str(tmp_path / "src/app.ts"),
        root=str(tmp_path),
        language_id="typescript",
        others=[],
        budget=200,
        definition_share=1.0,
    )
    assert render_comments(context, "typescript") == (
        "// Path: src/math.ts\n"
        "// export function add(a: number, b: number): number {\n//   return a + b;\n// }\n"
        "// ...\n// export const PI = 3.14;\n"
    )
