"""bench/quality_holes.py: holes per language are seeded, real cuts, and never land in comments."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from benchkit import bench_module

holes_module = bench_module("quality_holes")

PYTHON = '''import os


def walk(root):
    """Yield files.

    x = (not code)
    """
    for name in os.listdir(root):
        path = os.path.join(root, name)
        if os.path.isdir(path):
            yield from walk(path)
        else:
            yield path
'''
JAVASCRIPT = """import baseSlice from './_baseSlice.js';

/**
 * Creates an array of elements split into groups (size = 1).
 */
function chunk(array, size) {
  var length = array == null ? 0 : array.length;
  var index = 0, result = [];
  while (index < length) {
    result.push(baseSlice(array, index, (index += size)));
  }
  return result;
}
"""
GO = """package cobra

// ValidArgs checks (args, cmd) against the list.
func ValidArgs(cmd *Command, args []string) error {
\tif len(cmd.ValidArgs) > 0 {
\t\tfor _, v := range args {
\t\t\tif !stringInSlice(v, cmd.ValidArgs) {
\t\t\t\treturn fmt.Errorf("invalid argument %q", v)
\t\t\t}
\t\t}
\t}
\treturn nil
}
"""
SOURCES = {"python": (PYTHON, ".py"), "javascript": (JAVASCRIPT, ".js"), "go": (GO, ".go")}


@pytest.fixture
def trees(tmp_path: Path) -> dict[str, list[Path]]:
    written = {}
    for language, (text, extension) in SOURCES.items():
        path = tmp_path / f"sample{extension}"
        path.write_text(text)
        written[language] = [path]
    return written


@pytest.mark.parametrize("language", list(SOURCES))
def test_holes_are_seeded_per_language(trees: dict[str, list[Path]], language: str) -> None:
    holes = holes_module.cut_holes(6, 0, trees[language], language)
    assert holes == holes_module.cut_holes(6, 0, trees[language], language)
    assert len(holes) == 6 and [h.kind for h in holes] == ["single", "multi"] * 3
    assert all(h.language == language for h in holes)
    other_seeds = [holes_module.cut_holes(6, seed, trees[language], language) for seed in range(1, 6)]
    assert any(other != holes for other in other_seeds)


@pytest.mark.parametrize("language", list(SOURCES))
def test_holes_are_real_cuts(trees: dict[str, list[Path]], language: str) -> None:
    original = SOURCES[language][0]
    for seed in range(10):
        for hole in holes_module.cut_holes(4, seed, trees[language], language):
            before = hole.text[: hole.offset]
            assert original.startswith(before + hole.truth)
            assert before + hole.truth + hole.text[hole.offset :] == original
            assert hole.truth.strip() and not hole.truth.startswith(" ")
            if hole.kind == "single":
                assert "\n" not in hole.truth and hole.text[hole.offset] == "\n"
            else:
                header = before.rstrip().rsplit("\n", 1)[-1]
                assert header.endswith(":" if language == "python" else "{")
                assert len(hole.truth.split("\n")) <= holes_module.MAX_BODY


def test_comments_and_docstrings_are_never_cut() -> None:
    for language, (text, _) in SOURCES.items():
        lines = text.split("\n")
        flags = holes_module.code_lines(lines, language)
        for line, code in zip(lines, flags, strict=True):
            if any(word in line for word in ("not code", "Creates", "checks (args")):
                assert not code, line


def test_languages_draw_from_their_own_streams(trees: dict[str, list[Path]]) -> None:
    """Adding a JS tree does not change the Python holes of the same seed."""
    python = holes_module.cut_holes(4, 7, trees["python"], "python")
    holes_module.cut_holes(4, 7, trees["javascript"], "javascript")
    assert holes_module.cut_holes(4, 7, trees["python"], "python") == python


def test_no_candidate_gives_no_hole() -> None:
    rng = random.Random(0)
    assert holes_module.cut_single("x.go", ["// only a comment", ""], rng, "go") is None
    assert holes_module.cut_multi("x.js", ["var a = 1;", "var b = 2;"], rng, "javascript") is None
    assert holes_module.cut_holes(3, 0, [], "python") == []
