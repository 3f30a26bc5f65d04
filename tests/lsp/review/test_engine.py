"""The review engine: parsing model answers, anchoring by quote, chunking, selection."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llamita.lsp.review.engine import (
    FINDINGS_SCHEMA,
    Chunk,
    Finding,
    RawFinding,
    anchor,
    build_prompt,
    chunks,
    clean_quote,
    find_quote,
    is_replacement,
    normalize_severity,
    numbered,
    parse_findings,
    reanchor,
    review_text,
    select,
)

CODE = """import os


def read(path):
    f = open(path)
    return f.read()


def size(path):
    f = open(path)
    return len(f.read())
"""


def raw(line: int, quote: str, severity: str = "warning", suggestion: str = "") -> RawFinding:
    return RawFinding(line, severity, "leaks a file handle", quote, suggestion)


def test_parse_plain_json() -> None:
    content = json.dumps(
        {"findings": [{"line": 5, "severity": "error", "message": "m", "quote": "q", "suggestion": ""}]}
    )
    assert parse_findings(content) == [RawFinding(5, "error", "m", "q", "")]


@pytest.mark.parametrize(
    "content",
    [
        '```json\n{"findings": [{"line": 5, "severity": "high", "message": "m", "quote": "q"}]}\n```',
        'Review:\n{"findings": [{"line": "5", "severity": "high", "message": "m", "quote": "q"}]} Done.',
        '{"findings": [{"line": 5, "severity": "high", "message": "m", "quote": "q"}, {"line": 9, "sev',
        '[{"line": 5, "severity": "high", "message": "m", "quote": "q"}]',
    ],
    ids=["fenced", "prose-around", "truncated", "bare-list"],
)
def test_parse_tolerates_what_models_do(content: str) -> None:
    assert parse_findings(content) == [RawFinding(5, "error", "m", "q", "")]


@pytest.mark.parametrize(
    "content",
    [
        "",
        "no json here",
        '{"findings": "none"}',
        '{"findings": [1, {"message": "", "quote": "q"}, {"message": "m"}, {"message": "m", "quote": 3}]}',
    ],
    ids=["empty", "prose", "wrong-type", "invalid-items"],
)
def test_parse_drops_what_is_not_a_finding(content: str) -> None:
    assert parse_findings(content) == []


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("error", "error"),
        ("Critical", "error"),
        ("warn", "warning"),
        ("note", "info"),
        ("nit", "hint"),
        ("?", "warning"),
    ],
)
def test_normalize_severity(word: str, expected: str) -> None:
    assert normalize_severity(word) == expected


def test_anchor_picks_the_occurrence_nearest_the_reported_line() -> None:
    first = anchor(raw(5, "f = open(path)"), CODE)
    second = anchor(raw(11, "f = open(path)"), CODE)
    assert first is not None and second is not None
    assert (first.line, second.line) == (4, 9)
    assert CODE[second.start : second.end] == "f = open(path)"


def test_anchor_trusts_the_quote_over_a_wrong_line_number() -> None:
    finding = anchor(raw(1, "return len(f.read())"), CODE)
    assert finding is not None and finding.line == 10


def test_anchor_drops_hallucinated_quotes() -> None:
    assert anchor(raw(5, "with open(path) as f:"), CODE) is None
    assert anchor(raw(5, "f"), CODE) is None  # too short to mean anything


def test_anchor_ignores_whitespace_differences_and_copied_gutters() -> None:
    finding = anchor(raw(5, "  5 | f  =  open( path)"), CODE)
    assert finding is None  # "open( path)" is not in the code
    finding = anchor(raw(5, " 5 | f  =   open(path)"), CODE)
    assert finding is not None and CODE[finding.start : finding.end] == "f = open(path)"
    assert clean_quote("12 | x = 1\n13 | y = 2\n") == "x = 1\ny = 2"


def test_anchor_within_a_chunk() -> None:
    part = next(c for c in chunks(CODE, 20) if "def size" in c.text)
    finding = anchor(raw(5, "f = open(path)"), CODE, part)
    assert finding is not None and finding.line == 9


def test_find_quote_multiline() -> None:
    span = find_quote(CODE, "f = open(path)\n    return f.read()", 0)
    assert span is not None and CODE[span[0] : span[1]].endswith("return f.read()")


def test_chunks_cover_the_file_in_whole_lines() -> None:
    parts = chunks(CODE, 12)
    assert len(parts) > 1
    assert "".join(p.text for p in parts) == CODE
    for part in parts:
        assert CODE[part.start : part.start + len(part.text)] == part.text
        assert CODE.count("\n", 0, part.start) == part.first_line
    assert chunks("", 100) == [Chunk(0, 0, "")]


def test_numbered_and_prompt() -> None:
    part = Chunk(8, CODE.index("def size"), "def size(path):\n    f = open(path)\n")
    assert numbered(part) == " 9 | def size(path):\n10 |     f = open(path)"
    prompt = build_prompt(
        part,
        path="io.py",
        language="python",
        max_findings=3,
        template="$path $language $max_findings $first_line-$last_line\n$code",
    )
    assert prompt == "io.py python 3 9-10\n 9 | def size(path):\n10 |     f = open(path)"


@pytest.mark.parametrize(
    ("quote", "suggestion", "expected"),
    [
        ("open(path)", "open(path, encoding='utf-8')", True),
        ("open(path)", "", False),
        ("open(path)", "open(path)", False),
        ("open(path)", "Use a with statement to close the file.", False),
        ("open(path)", "consider using pathlib", False),
        ("# TODO fix this.", "# Fixed below.", True),
    ],
)
def test_is_replacement(quote: str, suggestion: str, expected: bool) -> None:
    assert is_replacement(quote, suggestion) is expected


def finding(start: int, severity: str, message: str = "m") -> Finding:
    return Finding(start, start + 3, 0, severity, message, "abc", "")


def test_select_orders_by_severity_dedupes_and_caps() -> None:
    items = [
        finding(30, "hint"),
        finding(10, "warning"),
        finding(20, "error"),
        finding(10, "warning"),
        finding(5, "warning"),
    ]
    chosen = select(items, 3)
    assert [(f.severity, f.start) for f in chosen] == [("error", 20), ("warning", 5), ("warning", 10)]
    assert select(items, 0) == []


def test_reanchor_follows_edits_and_drops_stale_findings() -> None:
    found = [anchor(raw(5, "f = open(path)"), CODE), anchor(raw(12, "return len(f.read())"), CODE)]
    assert all(found)
    edited = "# header\n" + CODE.replace("return len(f.read())", "return os.path.getsize(path)")
    moved = reanchor([f for f in found if f], edited)
    assert len(moved) == 1
    assert moved[0].line == 5 and edited[moved[0].start : moved[0].end] == "f = open(path)"
    assert reanchor(moved, edited) == moved


class FakeChat:
    """Answers each chunk with a finding quoting that chunk's first code line, plus a hallucinated one."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.priorities: list[str] = []

    async def chat(self, body: dict[str, Any], *, priority: str = "") -> dict[str, Any]:
        self.bodies.append(body)
        self.priorities.append(priority)
        prompt = body["messages"][0]["content"]
        lines = [
            line.split(" | ", 1)
            for line in prompt.split("\n")
            if " | " in line and line.split(" | ", 1)[1].strip()
        ]
        number, code = lines[-1]
        findings = [
            {
                "line": int(number),
                "severity": "warning",
                "message": "check this",
                "quote": code.strip(),
                "suggestion": "",
            },
            {
                "line": 1,
                "severity": "error",
                "message": "invented",
                "quote": "does_not_exist()",
                "suggestion": "",
            },
        ]
        return {"message": {"role": "assistant", "content": json.dumps({"findings": findings})}}


@pytest.mark.asyncio
async def test_review_text_chunks_asks_with_the_schema_and_anchors() -> None:
    chat = FakeChat()
    progress: list[tuple[int, int]] = []
    found = await review_text(
        chat,
        "reviewer",
        CODE,
        path="io.py",
        language="python",
        chunk_tokens=20,
        num_predict=99,
        keep_alive="1m",
        progress=lambda i, n: progress.append((i, n)),
    )
    assert len(chat.bodies) == len(chunks(CODE, 20)) > 1
    assert set(chat.priorities) == {"batch"}  # a keystroke's completion goes first
    body = chat.bodies[0]
    assert body["format"] == FINDINGS_SCHEMA and body["model"] == "reviewer" and body["keep_alive"] == "1m"
    assert body["options"] == {"temperature": 0, "num_predict": 99}
    assert "`io.py`" in body["messages"][0]["content"]
    assert progress == [(i, len(chat.bodies)) for i in range(len(chat.bodies))]
    assert found and all(f.message == "check this" for f in found)
    assert all(CODE[f.start : f.end] == f.quote for f in found)
