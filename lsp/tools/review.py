"""``llamita review``: review staged changes, a branch or files; the pre-commit hook's entry point.

It uses the language server's review engine (:mod:`review`: JSON-schema findings anchored by
their quoted code) on the changed regions of each file, as the commit will contain them.
The repository root's ``.llamita/rules.md`` or ``AGENTS.md`` (:mod:`llamita.lsp.rules`) goes with
every prompt. Output is one ``path:line: severity: message`` line per finding (clickable in editors and
CI logs), plus the suggested replacement.  Advisory by default: exit 0 unless
``--fail-on`` names a severity that was found.  An unreachable model server is a one-line
warning and exit 0, unless ``--fail-if-unreachable`` (or ``LLAMITA_REVIEW_STRICT=1``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import git

from llamita.lsp import config as env
from llamita.lsp import rules as repo_rules
from llamita.lsp.client import ModelServerError, OllamaClient, ResponseError, ServerUnreachable
from llamita.lsp.review.engine import SEVERITIES, Finding, review_text

from . import userconfig
from .gitdiff import (
    Change,
    FileDiff,
    GitError,
    branch_change,
    hunk_start,
    open_repo,
    paths_change,
    staged_change,
)

CONTEXT_LINES = 3
CHUNK_TOKENS = 3000  # the review engine's chunk size; the repository rules get a quarter of it
_RANK = {name: i for i, name in enumerate(SEVERITIES)}  # error=0 … hint=3


@dataclass(frozen=True)
class Reported:
    path: str
    line: int  # 1-based in the file
    finding: Finding

    def format(self) -> str:
        text = f"{self.path}:{self.line}: {self.finding.severity}: {self.finding.message}"
        if self.finding.suggestion.strip():
            text += f"\n    suggestion: {self.finding.suggestion.strip()}"
        return text


def changed_regions(diff: FileDiff, n_lines: int) -> list[tuple[int, int]]:
    """0-based [start, end) line ranges of the new file around added lines, merged, with context."""
    ranges: list[tuple[int, int]] = []
    new_line = 0
    for line in diff.patch.splitlines():
        header = hunk_start(line)
        if header is not None:
            new_line = header[0] - 1
            continue
        if line.startswith("+"):
            start, end = max(0, new_line - CONTEXT_LINES), min(n_lines, new_line + 1 + CONTEXT_LINES)
            if ranges and start <= ranges[-1][1]:
                ranges[-1] = (ranges[-1][0], max(ranges[-1][1], end))
            else:
                ranges.append((start, end))
            new_line += 1
        elif line.startswith(" "):
            new_line += 1
    return ranges


def content_of(repo: git.Repo, change: Change, diff: FileDiff) -> str | None:
    """The file as the reviewed state has it: the index, the head revision, or the working tree."""
    try:
        if change.head == "index":
            return str(repo.git.show(f":{diff.path}"))
        if change.head == "files":
            return (Path(repo.working_tree_dir or ".") / diff.path).read_text(encoding="utf-8")
        return str(repo.git.show(f"{change.head}:{diff.path}"))
    except (git.GitCommandError, OSError, UnicodeDecodeError):
        return None


async def review_change(
    repo: git.Repo, change: Change, client: OllamaClient, model: str, prompts_dir: str = ""
) -> list[Reported]:
    reported: list[Reported] = []
    rules = repo_rules.load(repo.working_tree_dir, CHUNK_TOKENS)
    for diff in change.files:
        if diff.binary or diff.status == "D":
            continue
        text = content_of(repo, change, diff)
        if text is None:
            continue
        lines = text.splitlines(keepends=True)
        for start, end in changed_regions(diff, len(lines)):
            excerpt = "".join(lines[start:end])
            findings = await review_text(
                client,
                model,
                excerpt,
                path=diff.path,
                language=PurePosixPath(diff.path).suffix.lstrip("."),
                chunk_tokens=CHUNK_TOKENS,
                prompts_dir=prompts_dir,
                rules=rules,
            )
            reported += [Reported(diff.path, start + f.line + 1, f) for f in findings]
    return reported


def should_fail(reported: list[Reported], fail_on: str) -> bool:
    if fail_on == "never":
        return False
    limit = _RANK[fail_on]
    return any(_RANK.get(r.finding.severity, 3) <= limit for r in reported)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="llamita review", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument("--staged", action="store_true", help="review the staged changes (default)")
    what.add_argument("--base", help="review the branch against the merge base with this revision")
    p.add_argument("files", nargs="*", help="review these whole files instead")
    p.add_argument(
        "--fail-on",
        choices=("error", "warning", "never"),
        default="never",
        help="exit 1 when a finding of this severity or worse is reported (default never)",
    )
    p.add_argument("--fail-if-unreachable", action="store_true", help="exit 2 when the model server is down")
    p.add_argument(
        "--model", help="review model (default: config review_model/model, else the server's first)"
    )
    p.add_argument("--prompts", help="directory with prompt files overriding the built-in ones")
    p.add_argument(
        "-C", "--repo", type=Path, default=Path("."), help="repository (default: current directory)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    strict = args.fail_if_unreachable or env.review_strict()
    try:
        repo = open_repo(args.repo)
    except GitError as e:
        print(f"llamita review: {e}", file=sys.stderr)
        return 1
    try:
        config = userconfig.load(Path(repo.working_tree_dir or "."))
        if args.files and not args.base:
            change = paths_change(repo, args.files)
        elif args.base:
            change = branch_change(repo, args.base)
        else:
            change = staged_change(repo)
        if not change.files:
            print("llamita review: nothing to review")
            return 0
        return asyncio.run(_run(repo, change, config, args, strict))
    except (GitError, userconfig.ConfigError) as e:
        print(f"llamita review: {e}", file=sys.stderr)
        return 1
    finally:
        repo.close()


async def _run(
    repo: git.Repo, change: Change, config: userconfig.UserConfig, args: argparse.Namespace, strict: bool
) -> int:
    client = userconfig.client_for(config)
    try:
        model = await userconfig.pick_model(client, args.model or config.review_model or config.model)
        reported = await review_change(repo, change, client, model, args.prompts or config.prompts_dir)
    except ServerUnreachable as e:
        print(
            f"llamita review: warning: model server unreachable ({e}); commit not reviewed", file=sys.stderr
        )
        return 2 if strict else 0
    except ResponseError as e:
        print(f"llamita review: warning: {e}", file=sys.stderr)
        return 2 if strict else 0
    except ModelServerError as e:
        print(f"llamita review: warning: {e}", file=sys.stderr)
        return 2 if strict else 0
    finally:
        await client.aclose()
    for item in reported:
        print(item.format())
    files = len([f for f in change.files if not f.binary and f.status != "D"])
    print(f"llamita review: {len(reported)} finding(s) in {files} file(s) with {model}")
    return 1 if should_fail(reported, args.fail_on) else 0


if __name__ == "__main__":
    sys.exit(main())
