from __future__ import annotations

import pytest

from llamita.lsp.tokens import estimate_tokens
from llamita.lsp.tools.diffbudget import drop_deletion_only_hunks, noise_reason, plan
from llamita.lsp.tools.gitdiff import FileDiff


@pytest.mark.parametrize(
    ("path", "binary", "reason"),
    [
        ("poetry.lock", False, "lock file"),
        ("web/package-lock.json", False, "lock file"),
        ("static/app.min.js", False, "generated file"),
        ("proto/x_pb2.py", False, "generated file"),
        ("img.png", True, "binary file"),
        ("src/main.py", False, None),
    ],
)
def test_noise(path: str, binary: bool, reason: str | None) -> None:
    assert noise_reason(FileDiff(path, "M", binary=binary)) == reason


def test_deletion_only_hunks_are_dropped() -> None:
    patch = "@@ -1,2 +1,1 @@\n-gone\n kept\n@@ -10,1 +9,2 @@\n ctx\n+added\n"
    assert drop_deletion_only_hunks(patch) == "@@ -10,1 +9,2 @@\n ctx\n+added\n"


def big(path: str, lines: int) -> FileDiff:
    body = "".join(f"+line {i} of {path}\n" for i in range(lines))
    return FileDiff(path, "A", additions=lines, patch=f"@@ -0,0 +1,{lines} @@\n{body}")


def test_plan_packs_largest_first_and_lists_the_rest() -> None:
    files = [big("a.py", 50), big("b.py", 400), big("c.py", 10), FileDiff("yarn.lock", "M"), big("d.py", 400)]
    p = plan(files, budget_tokens=4000, max_batches=1)
    covered = [f.path for f in p.covered]
    assert covered[0] in ("b.py", "d.py")
    listed = {path for path, _ in p.not_covered}
    assert "yarn.lock" in listed
    assert set(covered) | listed == {"a.py", "b.py", "c.py", "d.py", "yarn.lock"}  # nothing silently lost
    assert all(sum(estimate_tokens(s) for _, s in batch) <= 4000 for batch in p.batches)


def test_plan_clips_a_single_huge_file() -> None:
    p = plan([big("huge.py", 5000)], budget_tokens=1000, max_batches=2)
    ((_, section),) = p.batches[0]
    assert "clipped" in section and estimate_tokens(section) <= 1000
