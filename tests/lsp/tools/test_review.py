"""`llamita review` and the pre-commit hook: real repositories, the real `pre-commit` tool."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from gitrepo import close_all, commit, make_repo, write

from llamita.lsp.review.engine import Finding
from llamita.lsp.tools.gitdiff import FileDiff
from llamita.lsp.tools.review import Reported, changed_regions, should_fail

ROOT = Path(__file__).resolve().parents[3]
LINE = re.compile(r"^[\w./-]+:\d+: (error|warning|info|hint): .+")


@pytest.fixture(autouse=True)
def _close_repos():
    yield
    close_all()


@pytest.mark.parametrize(
    ("patch", "n", "regions"),
    [
        ("@@ -1,3 +1,4 @@\n a\n+b\n c\n d\n", 4, [(0, 4)]),
        ("@@ -10,2 +10,3 @@\n x\n+y\n z\n@@ -40,1 +41,2 @@\n q\n+r\n", 60, [(7, 14), (38, 45)]),
        ("@@ -1,2 +1,1 @@\n-gone\n kept\n", 5, []),
    ],
    ids=["one-hunk", "two-hunks", "deletion-only"],
)
def test_changed_regions(patch: str, n: int, regions: list[tuple[int, int]]) -> None:
    assert changed_regions(FileDiff("f.py", "M", patch=patch), n) == regions


def finding(severity: str) -> Reported:
    return Reported("a.py", 3, Finding(0, 1, 2, severity, "m", "q", ""))


@pytest.mark.parametrize(
    ("severities", "fail_on", "fails"),
    [
        ([], "error", False),
        (["warning"], "error", False),
        (["error"], "error", True),
        (["warning"], "warning", True),
        (["info"], "warning", False),
        (["error"], "never", False),
    ],
)
def test_should_fail(severities: list[str], fail_on: str, fails: bool) -> None:
    assert should_fail([finding(s) for s in severities], fail_on) is fails


def test_format() -> None:
    r = Reported("src/a.py", 12, Finding(0, 1, 11, "error", "Division by zero.", "1/0", "1/x"))
    assert r.format() == "src/a.py:12: error: Division by zero.\n    suggestion: 1/x"


def test_manifest_is_valid_for_pre_commit() -> None:
    from pre_commit.clientlib import load_manifest

    (hook,) = load_manifest(str(ROOT / ".pre-commit-hooks.yaml"))
    assert hook["id"] == "llamita-review" and hook["require_serial"] and hook["verbose"]
    assert hook["pass_filenames"] is False and hook["entry"].startswith("llamita review")


def buggy_repo(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    write(repo, "README.md", "x\n")
    commit(repo, "init")
    write(repo, "calc.py", "def ratio(a, b):\n    return a / b  # b may be zero\n\n\nprint(ratio(1, 0))\n")
    repo.git.add("calc.py")


def hook_config(tmp_path: Path, *args: str) -> None:
    entry = f"{shutil.which('llamita') or sys.executable + ' -m llamita.server.cli'} review --staged"
    entry += "".join(f" {a}" for a in args)
    (tmp_path / ".pre-commit-config.yaml").write_text(
        "repos:\n- repo: local\n  hooks:\n  - id: llamita-review\n    name: llamita code review\n"
        f"    entry: {entry}\n    language: system\n    pass_filenames: false\n    require_serial: true\n"
        "    verbose: true\n"
    )


def pre_commit(tmp_path: Path, host: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OLLAMA_HOST": host,
        "PRE_COMMIT_HOME": str(tmp_path / ".pc-cache"),
        "XDG_CONFIG_HOME": str(tmp_path / ".no-config"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "llamita-review"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.model
def test_hook_reviews_staged_changes_with_a_real_model(server, tmp_path: Path) -> None:
    buggy_repo(tmp_path)
    hook_config(tmp_path, "--model", "smollm2:135m")
    out = pre_commit(tmp_path, server.url)
    assert out.returncode == 0, out.stdout + out.stderr  # advisory: never blocks by default
    assert "llamita review:" in out.stdout and "finding(s) in 1 file(s) with smollm2:135m" in out.stdout
    for line in out.stdout.splitlines():
        if line.startswith("calc.py:"):
            assert LINE.match(line), line


def test_unreachable_server_warns_unless_strict(tmp_path: Path) -> None:
    buggy_repo(tmp_path)
    hook_config(tmp_path, "--model", "m")
    out = pre_commit(tmp_path, "127.0.0.1:9")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "model server unreachable" in out.stdout + out.stderr
    hook_config(tmp_path, "--model", "m", "--fail-if-unreachable")
    out = pre_commit(tmp_path, "127.0.0.1:9")
    assert out.returncode == 1  # pre-commit reports the hook's non-zero exit as a failure
    assert "Failed" in out.stdout


def test_nothing_staged(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    write(repo, "a", "a\n")
    commit(repo, "a")
    out = subprocess.run(
        [sys.executable, "-m", "llamita.server.cli", "review"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and "nothing to review" in out.stdout
