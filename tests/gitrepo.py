"""Real git repositories for the PR/review tests (GitPython on a temp dir)."""

from __future__ import annotations

from pathlib import Path

import git

_opened: list[git.Repo] = []


def close_all() -> None:
    """GitPython keeps `git cat-file` helpers running per Repo; stop them (warnings are errors)."""
    while _opened:
        _opened.pop().close()


def make_repo(root: Path) -> git.Repo:
    repo = git.Repo.init(root, initial_branch="main")
    _opened.append(repo)
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "Test")
        cw.set_value("user", "email", "test@example.com")
        cw.set_value("commit", "gpgsign", "false")
    return repo


def write(repo: git.Repo, path: str, text: str | bytes) -> None:
    full = Path(repo.working_tree_dir) / path
    full.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        full.write_bytes(text)
    else:
        full.write_text(text)


def commit(repo: git.Repo, message: str, *paths: str) -> None:
    repo.git.add(*(paths or ["-A"]))
    repo.index.commit(message)


def feature_branch(root: Path) -> git.Repo:
    """main with a small app, then a branch with a change, a rename, a binary, a lock file, a deletion."""
    repo = make_repo(root)
    write(repo, "app/calc.py", "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n")
    write(repo, "app/old_name.py", "VALUE = 1\n")
    write(repo, "README.md", "# Calc\n")
    write(repo, "obsolete.txt", "gone soon\n")
    commit(repo, "Initial app")
    repo.git.checkout("-b", "feature/multiply")
    write(
        repo,
        "app/calc.py",
        "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n\n\n"
        "def mul(a, b):\n    return a * b\n",
    )
    write(
        repo,
        "tests/test_calc.py",
        "from app.calc import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n",
    )
    repo.git.mv("app/old_name.py", "app/constants.py")
    write(repo, "logo.png", bytes(range(256)) * 4)
    write(repo, "poetry.lock", "# lock\n" * 50)
    repo.git.rm("obsolete.txt")
    commit(repo, "Add multiplication with tests")
    return repo
