"""The README's layout section names every package and module of server/ and lsp/ (so it matches the tree)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def layout() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Layout\n", 1)[1]
    return re.search(r"```\n(.*?)```", section, re.S).group(1)


def sources() -> list[Path]:
    return sorted(
        p for top in ("server", "lsp") for p in (ROOT / top).rglob("*.py") if p.name != "__init__.py"
    )


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_is_in_the_layout(path: Path) -> None:
    block = layout()
    assert re.search(rf"(?<![\w/]){re.escape(path.name)}", block), f"{path.relative_to(ROOT)} is missing"
    for package in path.relative_to(ROOT).parent.parts:
        assert f"{package}/" in block, f"package {package}/ is missing"


def test_the_layout_names_no_module_that_is_gone() -> None:
    names = {p.name for p in sources()} | {"__init__.py"}
    code = layout().split("\nprompts/", 1)[0]  # the server/ and lsp/ part
    listed = set(re.findall(r"(?<![\w/.])([a-z_]+\.py)\b", code))
    assert listed <= names, f"listed but not in the tree: {sorted(listed - names)}"
