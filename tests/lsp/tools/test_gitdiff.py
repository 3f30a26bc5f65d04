from __future__ import annotations

from pathlib import Path

import pytest
from gitrepo import close_all, commit, feature_branch, make_repo, write

from llamita.lsp.tools.gitdiff import (
    GitError,
    branch_change,
    default_base,
    open_repo,
    parse_numstat,
    staged_change,
)


@pytest.fixture(autouse=True)
def _close_repos():
    yield
    close_all()


def test_branch_change_sees_every_kind_of_change(tmp_path: Path) -> None:
    repo = feature_branch(tmp_path)
    change = branch_change(repo)
    by_path = {f.path: f for f in change.files}
    assert change.base == "main" and change.branch == "feature/multiply"
    assert change.commits == ["Add multiplication with tests"]
    assert by_path["app/calc.py"].status == "M" and by_path["app/calc.py"].additions == 4
    assert by_path["tests/test_calc.py"].status == "A"
    assert (
        by_path["app/constants.py"].status == "R"
        and by_path["app/constants.py"].old_path == "app/old_name.py"
    )
    assert by_path["logo.png"].binary
    assert by_path["obsolete.txt"].status == "D"
    assert "+def mul(a, b):" in by_path["app/calc.py"].patch


def test_works_from_a_subdirectory(tmp_path: Path) -> None:
    feature_branch(tmp_path)
    repo = open_repo(tmp_path / "app")
    try:
        assert Path(repo.working_tree_dir) == tmp_path
    finally:
        repo.close()


@pytest.mark.parametrize(
    ("setup", "message"),
    [("not-a-repo", "not a git repository"), ("unknown-base", "unknown base"), ("empty", "no changes")],
)
def test_clear_errors(tmp_path: Path, setup: str, message: str) -> None:
    with pytest.raises(GitError, match=message):
        if setup == "not-a-repo":
            open_repo(tmp_path)
        repo = feature_branch(tmp_path)
        if setup == "unknown-base":
            branch_change(repo, base="nope")
        repo.git.checkout("main")
        branch_change(repo, base="main")


def test_default_base_prefers_master_when_no_main(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    write(repo, "a", "a\n")
    commit(repo, "a")
    repo.git.branch("-m", "main", "master")
    assert default_base(repo) == "master"


def test_staged_change_on_unborn_branch_and_after(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    write(repo, "new.py", "print('hi')\n")
    repo.git.add("new.py")
    staged = staged_change(repo)
    assert [(f.path, f.status, f.additions) for f in staged.files] == [("new.py", "A", 1)]
    repo.index.commit("first")
    write(repo, "new.py", "print('hi')\nprint('there')\n")
    write(repo, "unstaged.py", "x = 1\n")
    repo.git.add("new.py")
    assert [f.path for f in staged_change(repo).files] == ["new.py"]


def test_parse_numstat_with_renames_and_binaries() -> None:
    text = "3\t1\tsrc/a.py\0-\t-\timg.png\0" + "0\t0\t\0old.py\0new.py\0"
    assert parse_numstat(text) == {
        "src/a.py": (3, 1, False),
        "img.png": (0, 0, True),
        "new.py": (0, 0, False),
    }
