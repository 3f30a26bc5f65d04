"""The review engine: a file in, anchored findings out. Shared by the diagnostics and ``llamita review``.

Models are asked for JSON matching :data:`FINDINGS_SCHEMA` (sent as ``format``, so Ollama-compatible
servers constrain the output) with a line number *and* a ``quote`` of the offending code. Line numbers
from small models are often off by a few lines, so a finding is placed where its quote occurs (the
occurrence nearest the reported line) and dropped when the quote is not in the file at all: that is
almost always a hallucinated finding. Large files are reviewed in chunks of whole lines.

Everything except :func:`review_text` is pure. Imports are the standard library, ``.prompts`` and ``.rules``
(the model client is passed in), so a pre-commit hook can use this module without the language-server
stack; positions are ``str`` offsets and 0-based lines, converted to editor positions by the caller.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from llamita.lsp import prompts
from llamita.lsp.rules import Rules, messages
from llamita.lsp.tokens import estimate_tokens

SEVERITIES = ("error", "warning", "info", "hint")
FINDINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "findings": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "line": {"type": "integer"},
                    "severity": {"type": "string", "enum": list(SEVERITIES)},
                    # Bounded strings keep a rambling model from spending num_predict on one field.
                    "message": {"type": "string", "maxLength": 400},
                    "quote": {"type": "string", "maxLength": 200},
                    "suggestion": {"type": "string", "maxLength": 400},
                },
                "required": ["line", "severity", "message", "quote", "suggestion"],
            },
        }
    },
    "required": ["findings"],
}
MIN_QUOTE_CHARS = 3
_SEVERITY_WORDS = {
    "error": "error",
    "critical": "error",
    "high": "error",
    "bug": "error",
    "warning": "warning",
    "warn": "warning",
    "medium": "warning",
    "info": "info",
    "information": "info",
    "note": "info",
    "low": "info",
    "hint": "hint",
    "style": "hint",
    "nit": "hint",
}
_LINE_NUMBER = re.compile(r"^\s*\d+\s*\| ?")
_FENCE = re.compile(r"^```[\w-]*\n|\n?```\s*$")


@dataclass(frozen=True)
class RawFinding:
    """A finding as the model reported it (``line`` 1-based, as numbered in the prompt)."""

    line: int
    severity: str
    message: str
    quote: str
    suggestion: str


@dataclass(frozen=True)
class Finding:
    """A finding anchored in the text: ``start``/``end`` are offsets of the quoted code, ``line`` 0-based."""

    start: int
    end: int
    line: int
    severity: str
    message: str
    quote: str
    suggestion: str

    @property
    def replacement(self) -> str | None:
        """``suggestion`` when it is code that replaces the quote (not advice in prose)."""
        return self.suggestion if is_replacement(self.quote, self.suggestion) else None


@dataclass(frozen=True)
class Chunk:
    """Whole lines of the file: ``first_line`` (0-based) starting at offset ``start``."""

    first_line: int
    start: int
    text: str


class ChatClient(Protocol):
    def chat(self, body: dict[str, Any]) -> Awaitable[dict[str, Any]]: ...


def normalize_severity(value: object) -> str:
    return _SEVERITY_WORDS.get(str(value).strip().lower(), "warning")


def is_replacement(quote: str, suggestion: str) -> bool:
    """True for a code edit: non-empty, different from the quote, and not a sentence of advice."""
    s = suggestion.strip()
    if not s or s == quote.strip():
        return False
    words = s.split()
    prose = s.endswith(".") and len(words) >= 4 and not quote.strip().endswith(".")
    return not prose and not s.lower().startswith(("consider ", "use ", "you should ", "avoid "))


def chunks(text: str, max_tokens: int) -> list[Chunk]:
    """Split ``text`` into runs of whole lines of at most about ``max_tokens`` tokens each."""
    lines = text.splitlines(keepends=True) or [""]
    out: list[Chunk] = []
    first, start, offset, used = 0, 0, 0, 0
    buf: list[str] = []
    for number, line in enumerate(lines):
        cost = estimate_tokens(line) + 2
        if buf and used + cost > max_tokens:
            out.append(Chunk(first, start, "".join(buf)))
            first, start, used, buf = number, offset, 0, []
        buf.append(line)
        used += cost
        offset += len(line)
    out.append(Chunk(first, start, "".join(buf)))
    return out


def numbered(chunk: Chunk) -> str:
    """The chunk with 1-based line numbers, ``  12 | code``, as the prompt shows it."""
    lines = chunk.text.splitlines() or [""]
    width = len(str(chunk.first_line + len(lines)))
    return "\n".join(f"{chunk.first_line + i + 1:>{width}} | {line}" for i, line in enumerate(lines))


def build_prompt(chunk: Chunk, *, path: str, language: str, max_findings: int, template: str) -> str:
    """The review prompt for one chunk; ``template`` is the text of ``prompts/review.md`` (``$`` fields)."""
    last = chunk.first_line + max(1, len(chunk.text.splitlines()))
    return string.Template(template).substitute(
        path=path,
        language=language or "source",
        max_findings=str(max_findings),
        first_line=str(chunk.first_line + 1),
        last_line=str(last),
        code=numbered(chunk),
    )


def _salvage(text: str) -> list[Any]:
    """Complete objects from a truncated ``{"findings": [{...}, {...}, {..`` answer."""
    match = re.search(r'"findings"\s*:\s*\[', text)
    if not match:
        return []
    decoder = json.JSONDecoder()
    items: list[Any] = []
    pos = match.end()
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        try:
            item, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return items
        items.append(item)


def _as_int(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return 0


def parse_findings(content: str) -> list[RawFinding]:
    """The findings in a model answer; tolerant of code fences, prose around the JSON and truncation."""
    text = _FENCE.sub("", content.strip())
    data: Any
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        brace = text.find("{")
        try:
            data, _ = json.JSONDecoder().raw_decode(text, brace) if brace >= 0 else (None, 0)
        except json.JSONDecodeError:
            data = {"findings": _salvage(text)}
    items = data.get("findings") if isinstance(data, dict) else data
    out: list[RawFinding] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        message, quote = item.get("message"), item.get("quote")
        if not isinstance(message, str) or not message.strip() or not isinstance(quote, str):
            continue
        suggestion = item.get("suggestion")
        out.append(
            RawFinding(
                line=_as_int(item.get("line")),
                severity=normalize_severity(item.get("severity", "warning")),
                message=message.strip(),
                quote=quote,
                suggestion=suggestion if isinstance(suggestion, str) else "",
            )
        )
    return out


def clean_quote(quote: str) -> str:
    """The quote without line-number gutters the model may have copied, and without outer blank space."""
    lines = [_LINE_NUMBER.sub("", line) for line in quote.strip("\n").split("\n")]
    return "\n".join(lines).strip()


def find_quote(
    text: str, quote: str, hint: int, lo: int = 0, hi: int | None = None
) -> tuple[int, int] | None:
    """The span of ``quote`` in ``text[lo:hi]`` nearest to offset ``hint``; whitespace runs may differ."""
    q = clean_quote(quote)
    if len("".join(q.split())) < MIN_QUOTE_CHARS:
        return None
    hi = len(text) if hi is None else hi
    spans = [(m.start(), m.start() + len(q)) for m in re.finditer(re.escape(q), text[lo:hi])]
    if not spans:
        pattern = r"\s+".join(re.escape(token) for token in q.split())
        spans = [(m.start(), m.end()) for m in re.finditer(pattern, text[lo:hi])]
    if not spans:
        return None
    best = min(spans, key=lambda span: abs(lo + span[0] - hint))
    return lo + best[0], lo + best[1]


def line_offsets(text: str) -> list[int]:
    """Offset of the start of each line."""
    offsets = [0]
    for line in text.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    return offsets


def anchor(raw: RawFinding, text: str, chunk: Chunk | None = None) -> Finding | None:
    """Place ``raw`` at its quote (searched inside ``chunk`` when given); None when the quote is absent."""
    offsets = line_offsets(text)
    lo, hi = (chunk.start, chunk.start + len(chunk.text)) if chunk else (0, len(text))
    reported = min(max(raw.line - 1, 0), len(offsets) - 1)
    span = find_quote(text, raw.quote, offsets[reported], lo, hi)
    if span is None:
        return None
    line = text.count("\n", 0, span[0])
    return Finding(span[0], span[1], line, raw.severity, raw.message, clean_quote(raw.quote), raw.suggestion)


def select(findings: list[Finding], max_findings: int) -> list[Finding]:
    """Drop duplicates, keep the most severe first (then by position), at most ``max_findings``."""
    unique = {(f.start, f.end, f.message): f for f in findings}
    ordered = sorted(unique.values(), key=lambda f: (SEVERITIES.index(f.severity), f.start))
    return ordered[: max(max_findings, 0)]


def reanchor(findings: list[Finding], text: str) -> list[Finding]:
    """Findings moved to where their quotes are in the edited ``text``; stale ones (quote gone) dropped."""
    out: list[Finding] = []
    for finding in findings:
        if text[finding.start : finding.end] == finding.quote:
            out.append(finding)
            continue
        span = find_quote(text, finding.quote, finding.start)
        if span is not None:
            out.append(replace(finding, start=span[0], end=span[1], line=text.count("\n", 0, span[0])))
    return out


async def review_text(
    client: ChatClient,
    model: str,
    text: str,
    *,
    path: str,
    language: str = "",
    max_findings: int = 10,
    chunk_tokens: int = 3000,
    num_predict: int = 1024,
    keep_alive: str = "",
    prompt_template: str | None = None,
    prompts_dir: str = "",
    progress: Callable[[int, int], None] | None = None,
    rules: Rules | None = None,
) -> list[Finding]:
    """Review ``text`` chunk by chunk with ``model`` through ``/api/chat`` and return anchored findings.

    ``rules`` (the repository's ``AGENTS.md``, see :mod:`llamita.lsp.rules`) go first as a system message.
    """
    template = prompt_template or prompts.load(
        "review.md", Path(prompts_dir).expanduser() if prompts_dir else None
    )
    parts = chunks(text, chunk_tokens)
    found: list[Finding] = []
    for index, chunk in enumerate(parts):
        if progress is not None:
            progress(index, len(parts))
        if not chunk.text.strip():
            continue
        prompt = build_prompt(
            chunk, path=path, language=language, max_findings=max_findings, template=template
        )
        body: dict[str, Any] = {
            "model": model,
            "messages": messages(prompt, rules),
            "format": FINDINGS_SCHEMA,
            "options": {"temperature": 0, "num_predict": num_predict},
        }
        if keep_alive:
            body["keep_alive"] = keep_alive
        answer = await client.chat(body, priority="batch")
        content = (answer.get("message") or {}).get("content") or ""
        for raw in parse_findings(content):
            finding = anchor(raw, text, chunk)
            if finding is not None:
                found.append(finding)
    return select(found, max_findings)
