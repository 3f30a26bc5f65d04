"""The repository-rules module: which file, how much of it, and the message it becomes (real git repos)."""

from __future__ import annotations

from pathlib import Path

import pytest
from gitrepo import close_all, make_repo, write

from llamita.lsp import rules
from llamita.lsp.tokens import estimate_tokens


@pytest.fixture(autouse=True)
def _close_repos():
    yield
    close_all()


def test_agents_md_at_the_root_is_found_from_a_nested_file(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    write(repo, "AGENTS.md", "# Rules\n\nUse tabs.\n")
    write(repo, "pkg/sub/AGENTS.md", "NESTED\n")
    found = rules.load(tmp_path / "pkg" / "sub" / "mod.py", 3000)
    assert found == rules.Rules(source="AGENTS.md", text="# Rules\n\nUse tabs.\n", cut=False)
    section = found.section()
    assert "`AGENTS.md`" in section and "Use tabs." in section and "NESTED" not in section
    assert "cut" not in section.split("\n\n", 1)[1]


def test_llamita_rules_win_and_empty_files_do_not_count(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    write(repo, "AGENTS.md", "agents\n")
    write(repo, ".llamita/rules.md", "llamita\n")
    assert rules.load(tmp_path, 3000).text == "llamita\n"
    write(repo, ".llamita/rules.md", "  \n\n")
    assert rules.load(tmp_path, 3000).source == "AGENTS.md"


def test_missing_file_or_no_repository_means_no_rules(tmp_path: Path) -> None:
    assert rules.load(tmp_path, 3000) is None  # not a repository
    make_repo(tmp_path)
    assert rules.load(tmp_path / "a.py", 3000) is None
    assert rules.load(None, 3000) is None and rules.load("", 3000) is None
    assert rules.messages("p", None) == [{"role": "user", "content": "p"}]


def test_a_huge_file_is_read_bounded_and_cut_at_a_line_with_a_marker(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    lines = [f"rule {i:06d}: keep it simple\n" for i in range(400_000)]  # about 11 MB
    write(repo, "AGENTS.md", "".join(lines))
    found = rules.load(tmp_path, 2000)
    assert found is not None and found.cut
    assert found.text == "".join(lines[: found.text.count("\n")])  # whole lines, from the top
    assert found.section().endswith(rules.CUT_MARKER.format(source="AGENTS.md"))
    assert found.tokens <= rules.budget_for(2000) + 1 == 501
    assert rules.budget_for(100_000) == rules.MAX_TOKENS


def test_byte_cap_drops_the_partial_line_and_bad_utf8_is_replaced(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    write(repo, "AGENTS.md", b"caf\xe9 ok\n" + b"x" * (rules.MAX_BYTES + 10))
    found = rules.load(tmp_path, 10**9)
    assert found is not None and found.cut and found.text == "caf\ufffd ok\n"


def test_worktree_git_file_marks_the_root(tmp_path: Path) -> None:
    (tmp_path / ".git").write_text("gitdir: /elsewhere\n")
    (tmp_path / "AGENTS.md").write_text("from a worktree\n")
    assert rules.git_root(tmp_path / "deep" / "file.py") == tmp_path
    assert rules.load(tmp_path / "deep" / "file.py", 3000).text == "from a worktree\n"


def test_messages_put_the_rules_first_as_a_system_message(tmp_path: Path) -> None:
    found = rules.Rules(source="AGENTS.md", text="r\n", cut=False)
    system, user = rules.messages("task", found)
    assert system == {"role": "system", "content": found.section()}
    assert user == {"role": "user", "content": "task"}
    assert found.tokens == estimate_tokens(found.section())
