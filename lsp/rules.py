"""Repository rules (``.llamita/rules.md`` or ``AGENTS.md``) for the review and PR prompts, in one place.

Review diagnostics, ``llamita review`` and ``llamita pr`` all send the project's own conventions to the
model the same way: a system message before the task prompt, so user-overridden prompt templates need
no slot for them. Only the repository root's file counts (``.llamita/rules.md`` wins over ``AGENTS.md``;
nested ``AGENTS.md`` files are ignored). Reading is bounded (:data:`MAX_BYTES`, UTF-8 with errors
replaced) and the text is cut at a line boundary to at most a quarter of the prompt budget (and never
more than :data:`MAX_TOKENS`), with a marker saying so. Standard library only, like the review engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llamita.lsp.tokens import estimate_tokens

RULE_FILES = (".llamita/rules.md", "AGENTS.md")  # first non-empty one wins
MAX_BYTES = 64 * 1024
MAX_TOKENS = 1500
CUT_MARKER = "[... {source} was cut here to fit the prompt budget ...]"
_HEADER = (
    "Repository rules from `{source}` (the project's own conventions). "
    "Apply them where they concern the code you are given; the task below still defines your answer."
)


@dataclass(frozen=True)
class Rules:
    """The budgeted rules text of ``source`` (a path relative to the repository root)."""

    source: str
    text: str
    cut: bool

    def section(self) -> str:
        """The system message's text: header, rules, and the cut marker when they were shortened."""
        body = self.text.rstrip("\n")
        if self.cut:
            body += "\n" + CUT_MARKER.format(source=self.source)
        return _HEADER.format(source=self.source) + "\n\n" + body

    @property
    def tokens(self) -> int:
        return estimate_tokens(self.section())


def git_root(start: str | Path) -> Path | None:
    """The nearest directory at or above ``start`` holding ``.git`` (a directory, or a worktree's file)."""
    path = Path(start).expanduser().absolute()
    for candidate in (path, *path.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def budget_for(prompt_tokens: int) -> int:
    """Tokens the rules may take in a prompt of ``prompt_tokens``: a quarter, at most :data:`MAX_TOKENS`."""
    return max(0, min(MAX_TOKENS, prompt_tokens // 4))


def cut(text: str, max_tokens: int) -> tuple[str, bool]:
    """``text`` cut to whole lines of at most ``max_tokens`` (estimated); True when something was cut."""
    if estimate_tokens(text) <= max_tokens:
        return text, False
    kept: list[str] = []
    used = 0
    for line in text.splitlines(keepends=True):
        cost = estimate_tokens(line)
        if used + cost > max_tokens:
            break
        kept.append(line)
        used += cost
    return "".join(kept), True


def _read(path: Path) -> tuple[str, bool] | None:
    """At most :data:`MAX_BYTES` of ``path`` (a regular file), decoded; True when the file was longer."""
    try:
        if not path.is_file():
            return None
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError:
        return None
    longer = len(data) > MAX_BYTES
    text = data[:MAX_BYTES].decode("utf-8", errors="replace")
    if longer:  # the last line is partial (perhaps mid-character): drop it
        text = text[: text.rfind("\n") + 1]
    return text, longer


def load(start: str | Path | None, prompt_tokens: int) -> Rules | None:
    """The rules of the repository containing ``start`` (a file or directory), budgeted; None if none."""
    if start is None or str(start) == "":
        return None
    root = git_root(start)
    if root is None:
        return None
    limit = budget_for(prompt_tokens)
    for name in RULE_FILES:
        read = _read(root / name)
        if read is None or not read[0].strip():
            continue
        overhead = estimate_tokens(_HEADER.format(source=name) + CUT_MARKER.format(source=name)) + 2
        text, shortened = cut(read[0].strip("\n") + "\n", max(0, limit - overhead))
        return Rules(source=name, text=text, cut=shortened or read[1])
    return None


def messages(prompt: str, rules: Rules | None) -> list[dict[str, Any]]:
    """The chat messages for ``prompt``: the rules as a system message first when there are any."""
    user = {"role": "user", "content": prompt}
    return [{"role": "system", "content": rules.section()}, user] if rules is not None else [user]
