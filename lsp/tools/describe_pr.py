"""PR descriptions from a diff: budgeted prompts, at most N model calls, a rendered result.

Small changes take one call that writes everything.  Larger ones are walked through in
batches (one call each, up to ``max_calls - 1``), then one call writes the title, summary
and review order from the per-file notes.  Every changed file ends up either in the
walkthrough or in "not covered" with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llamita.lsp import prompts
from llamita.lsp.tokens import estimate_tokens

from .diffbudget import Plan, plan
from .gitdiff import Change

TYPES = ["feature", "fix", "refactor", "docs", "tests", "chore"]


def _text(limit: int) -> dict[str, Any]:
    """Bounded strings keep a rambling model inside ``num_predict`` (the grammar enforces it)."""
    return {"type": "string", "maxLength": limit}


WALK_ITEM = {
    "type": "object",
    "properties": {"file": _text(160), "change": _text(100), "group": _text(20)},
    "required": ["file", "change", "group"],
}
FULL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": _text(90),
        "type": {"type": "string", "enum": TYPES},
        "summary": {"type": "array", "items": _text(110), "minItems": 1, "maxItems": 4},
        "walkthrough": {"type": "array", "items": WALK_ITEM, "maxItems": 40},
        "review_order": {"type": "array", "items": _text(160), "maxItems": 40},
    },
    "required": ["title", "type", "summary", "walkthrough", "review_order"],
}
WALK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"walkthrough": {"type": "array", "items": WALK_ITEM, "maxItems": 40}},
    "required": ["walkthrough"],
}
SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {k: v for k, v in FULL_SCHEMA["properties"].items() if k != "walkthrough"},
    "required": ["title", "type", "summary", "review_order"],
}
OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        **FULL_SCHEMA["properties"],
        "not_covered": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"file": {"type": "string"}, "reason": {"type": "string"}},
                "required": ["file", "reason"],
            },
        },
        "stats": {"type": "object"},
    },
    "required": ["title", "type", "summary", "walkthrough", "review_order", "not_covered"],
}

# (prompt, JSON schema, on_token) -> raw model text
Generate = Callable[[str, dict[str, Any], Callable[[str], None] | None], str]


@dataclass
class Description:
    title: str
    type: str
    summary: list[str]
    walkthrough: list[dict[str, str]]
    review_order: list[str]
    not_covered: list[dict[str, str]] = field(default_factory=list)
    calls: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "type": self.type,
            "summary": self.summary,
            "walkthrough": self.walkthrough,
            "review_order": self.review_order,
            "not_covered": self.not_covered,
            "stats": {"model_calls": self.calls},
        }


class ModelOutputError(Exception):
    """The model's answer is not the JSON the schema asked for, even after repair."""


def parse_json(text: str) -> dict[str, Any]:
    """The first JSON object in ``text`` (models wrap it in prose or fences, or stop mid-way)."""
    start = text.find("{")
    if start < 0:
        raise ModelOutputError("the model returned no JSON object")
    decoder = json.JSONDecoder()
    try:
        value, _ = decoder.raw_decode(text[start:])
    except json.JSONDecodeError as e:
        repaired = close_truncated(text[start:])
        try:
            value, _ = decoder.raw_decode(repaired)
        except json.JSONDecodeError:
            raise ModelOutputError(f"the model returned invalid JSON: {e.msg}") from e
    if not isinstance(value, dict):
        raise ModelOutputError("the model returned JSON that is not an object")
    return value


def close_truncated(text: str) -> str:
    """Close what a model cut off by its token limit left open: a string, arrays, objects.

    A dangling ``"key":`` or trailing comma is dropped first, so ``{"a": [1, 2`` becomes
    ``{"a": [1, 2]}`` and ``{"a": "unfinish`` becomes ``{"a": "unfinish"}``.
    """
    stack: list[str] = []
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
    out = text[:-1] if escaped else text
    if in_string:
        out += '"'
    out = out.rstrip()
    if out.endswith(","):
        out = out[:-1].rstrip()
    elif out.endswith(":"):  # a key without its value: drop the key (and the comma before it)
        out = out[:-1].rstrip()
        out = out[: out.rfind('"', 0, len(out) - 1)].rstrip()
        if out.endswith(","):
            out = out[:-1].rstrip()
    return out + "".join(reversed(stack))


def _strings(value: Any) -> list[str]:
    return [str(v).strip() for v in value if str(v).strip()] if isinstance(value, list) else []


def _walk(value: Any) -> list[dict[str, str]]:
    out = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict) and item.get("file"):
            out.append(
                {
                    "file": str(item["file"]),
                    "change": str(item.get("change", "")).strip(),
                    "group": str(item.get("group", "") or "other").strip(),
                }
            )
    return out


def describe(
    change: Change,
    generate: Generate,
    *,
    budget_tokens: int,
    max_calls: int = 4,
    prompts_dir: Path | None = None,
    on_token: Callable[[str], None] | None = None,
) -> Description:
    """Plan the diff, call the model (at most ``max_calls`` times) and assemble the result."""
    commits = "\n".join(f"- {c.splitlines()[0]}" for c in change.commits[:30]) or "(none)"
    overhead = estimate_tokens(prompts.load("pr_describe.md", prompts_dir) + commits) + 64
    single = plan(change.files, budget_tokens - overhead, 1)
    if not single.not_covered or _only_noise(single):
        return _one_call(change, single, generate, commits, prompts_dir, on_token)
    batches = plan(change.files, budget_tokens - overhead, max(1, max_calls - 1))
    return _map_reduce(change, batches, generate, commits, prompts_dir, on_token)


def _only_noise(p: Plan) -> bool:
    return all(reason != "did not fit in the model's context budget" for _, reason in p.not_covered)


def _bounded(schema: dict[str, Any], files: int) -> dict[str, Any]:
    """The schema with the walkthrough capped at the number of files shown (ends rambling early)."""
    if "walkthrough" not in schema["properties"]:
        return schema
    walk = {**schema["properties"]["walkthrough"], "maxItems": max(1, files)}
    return {**schema, "properties": {**schema["properties"], "walkthrough": walk}}


def _one_call(
    change: Change,
    p: Plan,
    generate: Generate,
    commits: str,
    prompts_dir: Path | None,
    on_token: Callable[[str], None] | None,
) -> Description:
    diff = "\n".join(section for batch in p.batches for _, section in batch) or "(only files not shown below)"
    prompt = prompts.render(
        "pr_describe.md", prompts_dir, branch=change.branch or "(unknown)", commits=commits, diff=diff
    )
    data = parse_json(generate(prompt, _bounded(FULL_SCHEMA, len(p.covered)), on_token))
    return _assemble(data, _walk(data.get("walkthrough")), p, calls=1)


def _map_reduce(
    change: Change,
    p: Plan,
    generate: Generate,
    commits: str,
    prompts_dir: Path | None,
    on_token: Callable[[str], None] | None,
) -> Description:
    notes: list[dict[str, str]] = []
    for i, batch in enumerate(p.batches, 1):
        prompt = prompts.render(
            "pr_walkthrough.md",
            prompts_dir,
            part=i,
            parts=len(p.batches),
            diff="\n".join(section for _, section in batch),
        )
        try:
            notes += _walk(
                parse_json(generate(prompt, _bounded(WALK_SCHEMA, len(batch)), None)).get("walkthrough")
            )
        except ModelOutputError:
            continue  # those files end up in "not covered"
    text = "\n".join(f"- {n['file']} [{n['group']}]: {n['change']}" for n in notes) or "(no notes)"
    prompt = prompts.render(
        "pr_summary.md", prompts_dir, branch=change.branch or "(unknown)", commits=commits, notes=text
    )
    data = parse_json(generate(prompt, SUMMARY_SCHEMA, on_token))
    return _assemble(data, notes, p, calls=len(p.batches) + 1)


def _assemble(data: dict[str, Any], walkthrough: list[dict[str, str]], p: Plan, calls: int) -> Description:
    # A renamed file is shown as "old → new"; the model may answer with either spelling.
    canonical = {f.path: f.path for f in p.covered} | {f.label: f.path for f in p.covered}
    walked: list[dict[str, str]] = []
    for item in walkthrough:
        path = canonical.get(item["file"])
        if path is not None and all(w["file"] != path for w in walked):
            walked.append({**item, "file": path})
    seen = {w["file"] for w in walked}
    not_covered = [{"file": path, "reason": reason} for path, reason in p.not_covered]
    not_covered += [
        {"file": f.path, "reason": "the model did not describe it"} for f in p.covered if f.path not in seen
    ]
    kind = str(data.get("type", "")).strip().lower()
    order = [canonical[f] for f in _strings(data.get("review_order")) if canonical.get(f) in seen]
    order = list(dict.fromkeys(order))
    order += [w["file"] for w in walked if w["file"] not in order]
    return Description(
        title=str(data.get("title", "")).strip() or "Untitled change",
        type=kind if kind in TYPES else "chore",
        summary=_strings(data.get("summary"))[:4] or ["(no summary)"],
        walkthrough=walked,
        review_order=order,
        not_covered=not_covered,
        calls=calls,
    )


def to_markdown(d: Description) -> str:
    lines = [f"# {d.title}", "", f"**Type:** {d.type}", "", "## Summary", ""]
    lines += [f"- {s}" for s in d.summary]
    lines += ["", "## Walkthrough", ""]
    groups: dict[str, list[dict[str, str]]] = {}
    for item in d.walkthrough:
        groups.setdefault(item["group"], []).append(item)
    for group, items in groups.items():
        lines.append(f"**{group}**")
        lines += [f"- `{i['file']}`: {i['change']}" for i in items]
        lines.append("")
    lines += ["## Suggested review order", ""]
    lines += [f"{n}. `{f}`" for n, f in enumerate(d.review_order, 1)] or ["(none)"]
    lines += ["", "## Not covered", ""]
    lines += [f"- `{n['file']}`: {n['reason']}" for n in d.not_covered] or ["(everything was described)"]
    return "\n".join(lines).rstrip() + "\n"
