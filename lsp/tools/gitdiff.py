"""Reading changes out of git (GitPython): a branch against its base, or the staged index.

The only module of the PR/review tools that imports GitPython, so the rest (budgeting,
prompts, rendering) stays pure and testable on plain data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import git

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


class GitError(Exception):
    """A user-facing git problem: not a repository, unknown base, nothing to describe."""


@dataclass
class FileDiff:
    """One changed file; ``patch`` is the unified diff body (hunks only)."""

    path: str
    status: str  # A added, M modified, D deleted, R renamed
    old_path: str = ""
    binary: bool = False
    additions: int = 0
    deletions: int = 0
    patch: str = ""

    @property
    def label(self) -> str:
        return f"{self.old_path} → {self.path}" if self.status == "R" and self.old_path else self.path


@dataclass
class Change:
    """What a PR description or a review looks at."""

    files: list[FileDiff]
    commits: list[str] = field(default_factory=list)
    base: str = ""
    head: str = ""
    branch: str = ""


def open_repo(path: Path | str = ".") -> git.Repo:
    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as e:
        raise GitError(f"not a git repository: {Path(path).resolve()}") from e


def default_base(repo: git.Repo) -> str:
    """The remote's default branch if known, else ``main``/``master``."""
    for remote in repo.remotes:
        try:
            ref = repo.git.symbolic_ref(f"refs/remotes/{remote.name}/HEAD")
            return ref.removeprefix("refs/remotes/")
        except git.GitCommandError:
            continue
    for name in ("main", "master"):
        if name in repo.heads:
            return name
    raise GitError("cannot tell the base branch: pass --base (no main or master branch here)")


def branch_change(repo: git.Repo, base: str | None = None, head: str = "HEAD") -> Change:
    """Files and commits between the merge base of ``base`` and ``head``."""
    base = base or default_base(repo)
    try:
        head_commit = repo.commit(head)
    except (git.BadName, ValueError) as e:
        raise GitError(f"unknown revision: {head}") from e
    try:
        base_commit = repo.commit(base)
    except (git.BadName, ValueError) as e:
        raise GitError(f"unknown base: {base}") from e
    merge_bases = repo.merge_base(base_commit, head_commit)
    if not merge_bases:
        raise GitError(f"{base} and {head} have no common history")
    start = merge_bases[0]
    patch = repo.git.diff(start.hexsha, head_commit.hexsha, "--no-color", "--no-ext-diff", "-M", "-U3")
    stats = repo.git.diff(start.hexsha, head_commit.hexsha, "--numstat", "-M", "-z")
    files = parse_diff(patch, parse_numstat(stats))
    if not files:
        raise GitError(f"no changes between {base} and {head}")
    commits = [c.message.strip() for c in repo.iter_commits(f"{start.hexsha}..{head_commit.hexsha}")]
    branch = ""
    try:
        branch = repo.active_branch.name if head == "HEAD" else head
    except TypeError:
        branch = head  # detached HEAD
    return Change(files, commits, base=base, head=head, branch=branch)


def staged_change(repo: git.Repo) -> Change:
    """The index against HEAD (``git diff --cached``), working on an unborn branch too."""
    patch = repo.git.diff("--cached", "--no-color", "--no-ext-diff", "-M", "-U3")
    stats = repo.git.diff("--cached", "--numstat", "-M", "-z")
    return Change(parse_diff(patch, parse_numstat(stats)), head="index")


def paths_change(repo: git.Repo, paths: list[str]) -> Change:
    """Whole files reviewed as if newly added (``llamita review FILE…``)."""
    files = []
    root = Path(repo.working_tree_dir or ".")
    for name in paths:
        path = Path(name)
        full = path if path.is_absolute() else Path.cwd() / path
        try:
            text = full.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            files.append(FileDiff(_relative(full, root), "A", binary=True))
            continue
        except OSError as e:
            raise GitError(f"cannot read {name}: {e.strerror}") from e
        lines = text.splitlines()
        body = "".join(f"+{line}\n" for line in lines)
        patch = f"@@ -0,0 +1,{len(lines)} @@\n{body}"
        files.append(FileDiff(_relative(full, root), "A", additions=len(lines), patch=patch))
    return Change(files, head="files")


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def parse_numstat(text: str) -> dict[str, tuple[int, int, bool]]:
    """``git diff --numstat -z`` → {new path: (added, deleted, binary)}."""
    out: dict[str, tuple[int, int, bool]] = {}
    parts = text.split("\0")
    i = 0
    while i < len(parts):
        entry = parts[i]
        if not entry.strip():
            i += 1
            continue
        fields = entry.split("\t")
        added, deleted = fields[0], fields[1]
        path = fields[2] if len(fields) > 2 else ""
        if not path:  # a rename: the next two NUL-separated items are old and new path
            path = parts[i + 2] if i + 2 < len(parts) else ""
            i += 3
        else:
            i += 1
        binary = added == "-"
        out[path] = (0 if binary else int(added), 0 if binary else int(deleted), binary)
    return out


def parse_diff(patch: str, stats: dict[str, tuple[int, int, bool]]) -> list[FileDiff]:
    """Split ``git diff`` output into files, with status, rename source and hunks."""
    files: list[FileDiff] = []
    current: FileDiff | None = None
    body: list[str] = []

    def close() -> None:
        if current is not None:
            current.patch = "".join(body)
            added, deleted, binary = stats.get(current.path, (current.additions, current.deletions, False))
            current.additions, current.deletions = added, deleted
            current.binary = current.binary or binary
            files.append(current)

    for line in patch.splitlines(keepends=True):
        if line.startswith("diff --git "):
            close()
            body = []
            m = re.match(r"diff --git a/(.*) b/(.*)$", line.rstrip("\n"))
            old, new = (m.group(1), m.group(2)) if m else ("", "")
            current = FileDiff(path=new, status="M", old_path=old if old != new else "")
            continue
        if current is None:
            continue
        if line.startswith("new file mode"):
            current.status = "A"
        elif line.startswith("deleted file mode"):
            current.status = "D"
        elif line.startswith("rename from "):
            current.status = "R"
            current.old_path = line[len("rename from ") :].rstrip("\n")
        elif line.startswith("rename to "):
            current.path = line[len("rename to ") :].rstrip("\n")
        elif line.startswith("Binary files "):
            current.binary = True
        elif line.startswith(("--- ", "+++ ", "index ", "similarity index", "old mode", "new mode")):
            continue
        elif line.startswith(("@@", "+", "-", " ", "\\")):
            body.append(line)
    close()
    return files


def hunk_start(line: str) -> tuple[int, int] | None:
    """(first new line, line count) of a ``@@`` header."""
    m = _HUNK.match(line)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2) or 1)
