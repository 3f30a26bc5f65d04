"""Golden none/single/multi-line decisions per language (``█`` marks the cursor)."""

from __future__ import annotations

import time

import pytest

from llamita.lsp.completion.syntax import Mode, decide, plain_decision, supported

N, S, M = Mode.NONE, Mode.SINGLE, Mode.MULTI

CASES = [
    # language, document, expected
    ("python", "pri█nt(1)\n", N),
    ("python", "def f(a, █):\n    pass\n", S),
    ("python", "x = foo(█)\n", S),
    ("python", 'x = "hello █"\n', S),
    ("python", "# explain the loop█\nx = 1\n", S),
    ("python", "def f():\n    █\n", M),
    ("python", "def f():█\n", M),
    ("python", 'def f():\n    """Doc █\n    """\n', M),
    ("python", "d = {█}\n", M),
    ("python", "x = compute(\n    █\n)\n", M),
    ("python", "return x█\n", M),
    ("python", "x = █ + y\n", S),
    ("javascript", "function f() {█}\n", M),
    ("javascript", "foo(1, █);\n", S),
    ("javascript", "const s = `a ${█} b`;\n", S),
    ("javascript", "// todo█\nrun();\n", S),
    ("javascript", "/* block */█\nrun();\n", M),
    ("javascript", "const total = items.red█uce()\n", N),
    ("typescript", "function f(a: number, █): void {}\n", S),
    ("typescript", "class A {\n  █\n}\n", M),
    ("typescriptreact", "const el = <div>{█}</div>;\n", M),
    ("go", "func main() {\n\t█\n}\n", M),
    ("go", 'fmt.Println("hi █")\n', S),
    ("rust", 'fn main() { let s = "ab█"; }\n', S),
    ("rust", "fn main() {\n    let v = vec![█];\n}\n", S),
    ("java", "class A { void f() { g(█); } }\n", S),
    ("java", "class A {\n  void f() {\n    █\n  }\n}\n", M),
    ("c", "int main(void) {\n  return █\n}\n", M),
    ("c", 'int main(void) {\n  printf("%d\\n", █);\n}\n', S),
    ("cpp", "int main() {\n  std::vector<int> v{█};\n}\n", M),
    ("cpp", "int f(int a, █) { return a; }\n", S),
]


@pytest.mark.parametrize(
    ("language", "document", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_decide(language: str, document: str, expected: Mode) -> None:
    prefix, suffix = document.split("█")
    assert decide(prefix, suffix, language) is expected


@pytest.mark.parametrize(
    ("line_before", "rest", "expected"),
    [
        ("x = fo", "o", N),
        ("x = ", "", M),
        ("x = ", "   ", M),
        ("print(", ")", S),
        ("print(", "))", S),
        ("if x {", "}", M),
        ('s = "', '";', S),
        ("x = ", " + 1", S),
        ("", "_name", N),
    ],
    ids=[
        "mid-word",
        "line-end",
        "trailing-space",
        "paren",
        "parens",
        "brace",
        "quote",
        "mid-line",
        "underscore",
    ],
)
def test_plain_decision(line_before: str, rest: str, expected: Mode) -> None:
    assert plain_decision(line_before, rest) is expected


def test_unknown_language_uses_the_plain_rules() -> None:
    assert not supported("markdown")
    assert decide("# Title\nSome text█", "\n", "markdown") is M
    # A comment at line end is multi-line by the plain rules; tree-sitter knows better for Python.
    assert decide("# note█", "\n", "plaintext") is M
    assert decide("# note█".rstrip("█"), "\n", "python") is S


def test_decide_is_cheap_on_a_full_window() -> None:
    body = "".join(f"def f{i}(a, b):\n    return a + b * {i}\n\n" for i in range(150))
    decide(body, "\n", "python")  # first call loads the grammar
    started = time.perf_counter()
    for _ in range(10):
        decide(body, "\n", "python")
    assert (time.perf_counter() - started) / 10 < 0.05
