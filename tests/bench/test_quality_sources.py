"""bench/quality_sources.py: where the pinned JS and Go trees land and which of their files are used."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchkit import bench_module

sources = bench_module("quality_sources")


def test_trees_are_pinned_one_per_language() -> None:
    assert sources.LANGUAGES == ("python", "javascript", "go")
    assert sources.TREES["javascript"].label == "lodash-es@4.17.21"
    assert sources.TREES["go"].label == "golang-github-spf13-cobra-dev@1.6.1-1"
    assert {t.extension for t in sources.TREES.values()} == {".py", ".js", ".go"}


def test_layout_under_the_gitignored_sources_dir(tmp_path: Path) -> None:
    go = sources.TREES["go"]
    assert go.root(tmp_path) == tmp_path / "golang-github-spf13-cobra-dev-1.6.1-1"
    assert go.source_dir(tmp_path).as_posix().endswith("usr/share/gocode/src/github.com/spf13/cobra")
    assert sources.TREES["javascript"].source_dir(tmp_path) == tmp_path / "lodash-es-4.17.21" / "package"
    assert sources.SOURCES.name == ".sources" and sources.SOURCES.parent.name == "bench"
    ignored = (Path(__file__).resolve().parents[2] / ".gitignore").read_text().split("\n")
    assert "bench/.sources/" in ignored


def test_a_missing_tree_says_how_to_fetch_it(tmp_path: Path) -> None:
    with pytest.raises(sources.MissingTree, match="make quality-sources"):
        sources.files("go", tmp_path)


def test_files_by_extension_and_size_in_a_stable_order(tmp_path: Path) -> None:
    package = sources.TREES["javascript"].source_dir(tmp_path)
    (package / "sub").mkdir(parents=True)
    (package / "b.js").write_text("x" * 2000)
    (package / "sub" / "a.js").write_text("y" * 2000)
    (package / "tiny.js").write_text("export { default } from './x.js';\n")
    (package / "README.md").write_text("z" * 2000)
    assert sources.files("javascript", tmp_path) == [package / "b.js", package / "sub" / "a.js"]


def test_the_stdlib_needs_no_fetch(tmp_path: Path) -> None:
    assert sources.fetch(sources.TREES["python"], tmp_path) == sources.TREES["python"].root()
    assert len(sources.files("python", tmp_path)) > 50 and not any(tmp_path.iterdir())


@pytest.mark.parametrize("language", ["javascript", "go"])
def test_fetched_trees_hold_enough_files(language: str) -> None:
    """Checks what `make quality-sources` left in bench/.sources (skipped when it could not fetch)."""
    try:
        found = sources.files(language)
    except sources.MissingTree as e:
        pytest.skip(str(e))
    assert len(found) >= 20 and all(p.suffix == sources.TREES[language].extension for p in found)
