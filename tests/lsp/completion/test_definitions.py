"""Top-level definitions found with tree-sitter, shortened for a prompt."""

from __future__ import annotations

from llamita.lsp.completion.definitions import MAX_LINES, Definition, find, top_level

PY = (
    "import os\n"
    "\n"
    "@cache\n"
    "def helper(a: int,\n"
    "           b: int = 2) -> int:\n"
    '    """Add twice."""\n'
    "    return a + 2 * b\n"
    "\n"
    "class Small:\n"
    "    x = 1\n"
    "\n"
    "class Big(Base):\n"
    '    """Many methods."""\n'
    "    limit = 3\n" + "".join(f"    def m{i}(self, v):\n        return v + {i}\n" for i in range(8)) + "\n"
    "LIMIT: int = 10\n"
    "def long():\n" + "".join(f"    x{i} = {i}\n" for i in range(30))
)


def test_python_functions_classes_and_constants() -> None:
    found = {d.name: d for d in top_level(PY, "python")}
    assert list(found) == ["helper", "Small", "Big", "LIMIT", "long"]
    helper = found["helper"]
    assert (helper.start_line, helper.end_line) == (2, 7)  # the decorator is part of it
    assert helper.text == (
        "@cache\ndef helper(a: int,\n           b: int = 2) -> int:\n"
        '    """Add twice."""\n    return a + 2 * b'
    )
    assert found["Small"].text == "class Small:\n    x = 1"
    assert found["LIMIT"].text == "LIMIT: int = 10"


def test_python_big_class_is_a_skeleton_and_long_function_is_cut() -> None:
    found = {d.name: d for d in top_level(PY, "python")}
    big = found["Big"].text.split("\n")
    assert big[:3] == ["class Big(Base):", '    """Many methods."""', "    limit = 3"]
    assert big[3:] == [f"    def m{i}(self, v): ..." for i in range(8)]
    long = found["long"].text.split("\n")
    assert len(long) == MAX_LINES + 1 and long[-1] == "    ..."


TS = """export function add(a: number, b: number): number {
  return a + b;
}
export default class Store extends Base {
  items: string[] = [];
  get(i: number): string {
    return this.items[i];
  }
  put(v: string): void {
    this.items.push(v);
  }
  size(): number {
    return this.items.length;
  }
  clear(): void {
    this.items = [];
  }
}
export const twice = (x: number) => 2 * x, thrice = 3;
interface Shape { area(): number }
type Id = string;
function local() {}
"""


def test_script_definitions() -> None:
    found = {d.name: d for d in top_level(TS, "typescript")}
    assert list(found) == ["add", "Store", "default", "twice", "thrice", "Shape", "Id", "local"]
    assert found["add"].text == "export function add(a: number, b: number): number {\n  return a + b;\n}"
    assert (found["Store"].start_line, found["Store"].end_line) == (3, 18)
    assert found["default"].text == found["Store"].text  # ``export default``: also its import name
    assert found["Store"].text.split("\n") == [
        "export default class Store extends Base {",
        "  items: string[] = [];",
        "  get(i: number): string { ... }",
        "  put(v: string): void { ... }",
        "  size(): number { ... }",
        "  clear(): void { ... }",
        "}",
    ]
    assert found["thrice"].text == "export const twice = (x: number) => 2 * x, thrice = 3;"
    assert found["Shape"].text == "interface Shape { area(): number }"


def test_find_keeps_the_order_asked_and_skips_missing_names() -> None:
    assert [d.name for d in find(PY, "python", ["Big", "nope", "helper", "Big"])] == ["Big", "helper"]
    assert find(PY, "go", ["helper"]) == []
    # A syntax error still parses (tree-sitter recovers): the damaged definition is shown as written.
    assert find("def broken(:\n", "python", ["broken"]) == [Definition("broken", 0, 1, "def broken(:")]
