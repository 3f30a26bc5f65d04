"""`llamita pr` end to end: real git repositories, a real llamita server with SmolLM2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gitrepo import close_all, commit, feature_branch, make_repo, write

pytestmark = pytest.mark.model


@pytest.fixture(autouse=True)
def _close_repos():
    yield
    close_all()


def pr(server_url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OLLAMA_HOST": server_url, "XDG_CONFIG_HOME": str(cwd / ".no-config")}
    return subprocess.run(
        [sys.executable, "-m", "llamita.server.cli", "pr", "--model", "smollm2:135m", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def check_structure(doc: dict, changed: set[str]) -> None:
    for key, kind in (
        ("title", str),
        ("type", str),
        ("summary", list),
        ("walkthrough", list),
        ("review_order", list),
        ("not_covered", list),
    ):
        assert isinstance(doc[key], kind), key
    assert doc["type"] in ("feature", "fix", "refactor", "docs", "tests", "chore")
    assert 1 <= len(doc["summary"]) <= 4
    walked = {w["file"] for w in doc["walkthrough"]}
    listed = {n["file"] for n in doc["not_covered"]}
    assert walked | listed >= changed, changed - walked - listed  # every changed file accounted for


def test_describe_a_feature_branch(server, tmp_path: Path) -> None:
    feature_branch(tmp_path)
    out = pr(server.url, tmp_path, "--format", "json", "--num-ctx", "2048")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    check_structure(
        doc,
        {"app/calc.py", "tests/test_calc.py", "app/constants.py", "obsolete.txt", "logo.png", "poetry.lock"},
    )
    reasons = {n["file"]: n["reason"] for n in doc["not_covered"]}
    assert reasons["logo.png"] == "binary file" and reasons["poetry.lock"] == "lock file"
    md = pr(server.url, tmp_path / "app", "--output", str(tmp_path / "pr.md"), "--num-ctx", "2048")
    assert md.returncode == 0, md.stderr
    text = (tmp_path / "pr.md").read_text()
    assert text.startswith("# ") and "## Walkthrough" in text and "## Not covered" in text


def test_five_thousand_line_diff(server, tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    write(repo, "README.md", "base\n")
    commit(repo, "base")
    repo.git.checkout("-b", "big")
    for i in range(25):
        write(
            repo,
            f"pkg/module_{i:02d}.py",
            "".join(f"def f_{i}_{j}(x):\n    return x + {j}\n" for j in range(100)),
        )
    commit(repo, "Add 25 generated modules")
    started = time.monotonic()
    out = pr(server.url, tmp_path, "--format", "json", "--num-ctx", "1536", "--max-calls", "3")
    elapsed = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    check_structure(doc, {f"pkg/module_{i:02d}.py" for i in range(25)})
    assert doc["stats"]["model_calls"] <= 3
    print(f"\n5,000-line diff: {doc['stats']['model_calls']} model calls, {elapsed:.1f}s")


def test_errors(server, tmp_path: Path) -> None:
    out = pr(server.url, tmp_path)
    assert out.returncode == 1 and "not a git repository" in out.stderr
    feature_branch(tmp_path)
    out = pr(server.url, tmp_path, "--base", "nope")
    assert out.returncode == 1 and "unknown base: nope" in out.stderr
    out = pr("127.0.0.1:9", tmp_path)
    assert out.returncode == 1 and "could not reach the model server" in out.stderr
