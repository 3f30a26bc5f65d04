"""Fitting a diff to a model's context: filter, compress, pack into batches (pure functions).

Deterministic, after pr-agent's strategy: lock files, generated and binary files are never
sent (but are listed); deletion-only hunks are dropped; the remaining files go largest first
into batches that fit the token budget; whatever does not fit in ``max_batches`` is listed
as not covered.  No file is ever dropped silently.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from llamita.lsp.tokens import estimate_tokens

from .gitdiff import FileDiff

LOCK_FILES = {
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "poetry.lock",
    "uv.lock",
    "Pipfile.lock",
    "Cargo.lock",
    "Gemfile.lock",
    "composer.lock",
    "go.sum",
    "mix.lock",
    "pubspec.lock",
    "packages.lock.json",
    "flake.lock",
}
GENERATED = (
    "*.min.js",
    "*.min.css",
    "*.map",
    "*_pb2.py",
    "*_pb2_grpc.py",
    "*.pb.go",
    "*.generated.*",
    "*.g.dart",
    "dist/*",
    "build/*",
    "vendor/*",
    "node_modules/*",
    "*.snap",
    "*.svg",
)


def noise_reason(diff: FileDiff) -> str | None:
    """Why a file should not be shown to the model, or None."""
    name = PurePosixPath(diff.path).name
    if diff.binary:
        return "binary file"
    if name in LOCK_FILES:
        return "lock file"
    if any(fnmatch.fnmatch(diff.path, pattern) or fnmatch.fnmatch(name, pattern) for pattern in GENERATED):
        return "generated file"
    return None


def drop_deletion_only_hunks(patch: str) -> str:
    """Keep hunks that add or keep something; pure deletions say little a file list does not."""
    hunks: list[list[str]] = []
    for line in patch.splitlines(keepends=True):
        if line.startswith("@@") or not hunks:
            hunks.append([line])
        else:
            hunks[-1].append(line)
    kept = [h for h in hunks if any(line.startswith("+") for line in h[1:]) or not h[0].startswith("@@")]
    return "".join("".join(h) for h in kept)


def render_file(diff: FileDiff, patch: str | None = None) -> str:
    """A file section as the prompts show it."""
    header = {"A": "new file", "D": "deleted file", "R": "renamed", "M": "modified"}.get(
        diff.status, "modified"
    )
    body = diff.patch if patch is None else patch
    return f"## File: {diff.label} ({header}, +{diff.additions}/-{diff.deletions})\n{body}\n"


@dataclass
class Plan:
    batches: list[list[tuple[FileDiff, str]]] = field(default_factory=list)  # (file, rendered section)
    not_covered: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    @property
    def covered(self) -> list[FileDiff]:
        return [f for batch in self.batches for f, _ in batch]


def plan(files: list[FileDiff], budget_tokens: int, max_batches: int) -> Plan:
    """Pack files into at most ``max_batches`` batches of ``budget_tokens`` each."""
    out = Plan()
    candidates: list[tuple[FileDiff, str]] = []
    for diff in files:
        reason = noise_reason(diff)
        if reason:
            out.not_covered.append((diff.path, reason))
            continue
        if diff.status == "D":
            section = render_file(diff, "(file deleted)\n")
        else:
            section = render_file(diff, drop_deletion_only_hunks(diff.patch))
        candidates.append((diff, section))
    candidates.sort(key=lambda item: estimate_tokens(item[1]), reverse=True)
    sizes: list[int] = []
    for diff, section in candidates:
        cost = estimate_tokens(section)
        if cost > budget_tokens:
            section = clip(section, budget_tokens)
            cost = estimate_tokens(section)
        slot = next((i for i, used in enumerate(sizes) if used + cost <= budget_tokens), None)
        if slot is None and len(sizes) < max_batches:
            out.batches.append([])
            sizes.append(0)
            slot = len(sizes) - 1
        if slot is None:
            out.not_covered.append((diff.path, "did not fit in the model's context budget"))
            continue
        out.batches[slot].append((diff, section))
        sizes[slot] += cost
    return out


def clip(section: str, budget_tokens: int) -> str:
    """Cut an oversized file section at a line boundary, saying so."""
    limit = int(budget_tokens * 3.5) - 80
    cut = section[:limit]
    cut = cut[: cut.rfind("\n") + 1] if "\n" in cut else cut
    return cut + "… (diff clipped to fit the context)\n"
