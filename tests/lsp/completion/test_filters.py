"""Golden tests for every post-processing filter, then the whole pipeline.

Cases are written as the document around the cursor (``█`` marks it) plus the raw model output.
"""

from __future__ import annotations

import pytest

from llamita.lsp.completion.filters import (
    FilterContext,
    Suggestion,
    cut_single_line,
    drop_duplicate_of_suffix,
    drop_short,
    limit_scope,
    postprocess,
    remove_duplicate_closing_line,
    remove_repetition,
    replace_length,
    trim_space,
)
from llamita.lsp.completion.syntax import Mode


def ctx(document: str, mode: Mode = Mode.MULTI) -> FilterContext:
    prefix, suffix = document.split("█")
    return FilterContext(prefix, suffix, mode)


@pytest.mark.parametrize(
    ("mode", "raw", "expected"),
    [
        (Mode.SINGLE, "a + b)\n    return c", "a + b)"),
        (Mode.MULTI, "a + b\n    return c", "a + b\n    return c"),
    ],
    ids=["single-cut", "multi-kept"],
)
def test_cut_single_line(mode: Mode, raw: str, expected: str) -> None:
    assert cut_single_line(raw, ctx("x = █\n", mode)) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("x = 1\ny = 2", "x = 1\ny = 2"),
        ("print(x)\nprint(x)\nprint(x)\nprint(x)", "print(x)"),
        ("x += 1\n}\n}\n}", "x += 1\n}\n}\n}"),
        ("a = 1\nb = 2\n\na = 1\nb = 2\n\nc = 3", "a = 1\nb = 2"),
        ("total = 0\nfoo(foo(foo(foo(foo(foo(foo(", "total = 0"),
        ("value = compute_the_thing()compute_the_thing()compute_the_thing()compute_the_thing()", ""),
        (
            "for i in range(3):\n    pass\n\nfor j in range(3):\n    pass",
            "for i in range(3):\n    pass\n\nfor j in range(3):\n    pass",
        ),
    ],
    ids=[
        "plain",
        "same-line-x4",
        "closing-lines-ok",
        "repeated-block",
        "line-end-loop-short",
        "line-end-loop-long",
        "similar-blocks-ok",
    ],
)
def test_remove_repetition(raw: str, expected: str) -> None:
    assert remove_repetition(raw, ctx("█")) == expected


@pytest.mark.parametrize(
    ("document", "raw", "expected"),
    [
        (
            "def f():\n    x = 1\n    █\n",
            "y = 2\n    return x + y\n\ndef g():\n    pass",
            "y = 2\n    return x + y",
        ),
        (
            "def f():█\n",
            "\n    return 1\n\ndef g():\n    return 2",
            "\n    return 1",
        ),
        (
            "function f() {█\n",
            "\n  return 1;\n}\nfunction g() {}",
            "\n  return 1;\n}",
        ),
        (
            "    if ok:\n        █\n",
            "run()\n        more()\n    else:\n        stop()",
            "run()\n        more()",
        ),
        (
            "    █\n",
            "for x in y:\n        print(x)\n    return",
            "for x in y:\n        print(x)\n    return",
        ),
    ],
    ids=["dedent-ends", "python-body-only", "brace-body-and-closer", "else-is-outside", "siblings-kept"],
)
def test_limit_scope(document: str, raw: str, expected: str) -> None:
    assert limit_scope(raw, ctx(document)) == expected


def test_limit_scope_leaves_single_line_mode_alone() -> None:
    assert limit_scope("a\nb", ctx("    x = █\n", Mode.SINGLE)) == "a\nb"


@pytest.mark.parametrize(
    ("document", "raw", "expected"),
    [
        ("if (x) {█\n}\n", "\n  y();\n}", "\n  y();"),
        ("if (x) {█\n  other();\n}\n", "\n  y();\n}", "\n  y();\n}"),
        ("f(█\n)\n", "\n  a,\n  b\n)", "\n  a,\n  b"),
        ("x = █\n", "1", "1"),
    ],
    ids=["closing-duplicated", "next-line-differs", "paren", "single-line"],
)
def test_remove_duplicate_closing_line(document: str, raw: str, expected: str) -> None:
    assert remove_duplicate_closing_line(raw, ctx(document)) == expected


@pytest.mark.parametrize(
    ("document", "raw", "expected"),
    [
        ("def f():\n    █\n    return total\n", "return total", ""),
        ("def f():\n    █\n    return  total\n", "return total\n", ""),
        ("x = compute(█first, second)\n", "first", ""),
        ("x = compute(█)\n", "first, second", "first, second"),
        ("def f():\n    █\n    return total\n", "total = 0\n    return total", "total = 0\n    return total"),
    ],
    ids=["same-line", "whitespace-differs", "rest-of-line", "new-text", "new-then-existing"],
)
def test_drop_duplicate_of_suffix(document: str, raw: str, expected: str) -> None:
    assert drop_duplicate_of_suffix(raw, ctx(document)) == expected


@pytest.mark.parametrize(
    ("document", "raw", "expected"),
    [
        ("x = █\n", " value  \n", "value"),
        ("x =█\n", " value", " value"),
        ("    █\n", "  value", "  value"),
        ("x = █\n", "value\n\n\n", "value"),
    ],
    ids=["double-space", "space-needed", "indentation-kept", "trailing-lines"],
)
def test_trim_space(document: str, raw: str, expected: str) -> None:
    assert trim_space(raw, ctx(document)) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("abc", ""), (" a ) ", ""), ("abcd", "abcd"), ("a b\nc d", "a b\nc d")],
    ids=["three", "spaces-do-not-count", "four", "across-lines"],
)
def test_drop_short(raw: str, expected: str) -> None:
    assert drop_short(raw, ctx("█")) == expected


@pytest.mark.parametrize(
    ("document", "text", "expected"),
    [
        ("print(█)\n", "x, y)", 1),
        ("print(█)\n", "x, y", 0),
        ('s = f("█")\n', 'name")', 2),
        ("x = [█]  \n", "1, 2]", 3),
        ("if x {█}\n", "\n  y()\n}", 1),
        ("print(█) + 1\n", "x)", 0),
        ("x = █\n", "1", 0),
    ],
    ids=[
        "paren",
        "not-closed-by-suggestion",
        "quote-and-paren",
        "trailing-space",
        "brace-multiline",
        "not-only-closers",
        "nothing-after",
    ],
)
def test_replace_length(document: str, text: str, expected: int) -> None:
    assert replace_length(text, ctx(document)) == expected


@pytest.mark.parametrize(
    ("document", "mode", "raw", "expected"),
    [
        (
            "def add(a, b):\n    █\n",
            Mode.MULTI,
            "return a + b\n\n\nprint(add(1, 2))",
            Suggestion("return a + b"),
        ),
        ("total = add(█)\n", Mode.SINGLE, "1, 2)\nprint(total)", Suggestion("1, 2)", 1)),
        ("x = █\n", Mode.SINGLE, "1", None),
        ("def f():\n    █\n    return total\n", Mode.MULTI, "return total\n", None),
        ("items = [█]\n", Mode.SINGLE, "x for x in range(10)\n", Suggestion("x for x in range(10)")),
        ("log(█)\n", Mode.MULTI, "aaaa" * 30, None),
    ],
    ids=["body", "autoclosed", "too-short", "duplicate", "list", "garbage"],
)
def test_postprocess(document: str, mode: Mode, raw: str, expected: Suggestion | None) -> None:
    assert postprocess(raw, ctx(document, mode)) == expected
