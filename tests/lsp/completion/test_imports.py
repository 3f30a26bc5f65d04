"""Import parsing (tree-sitter) and resolution to files inside the workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from llamita.lsp.completion.imports import Import, Target, parse_imports, reader, resolve, used_names

PY = """import os, json
import pkg.sub as sub
from pkg.util import helper, Other as O
from . import sibling
from ..shared.mod import (a,
    b)
from m import *

if True:
    import hidden
"""

TS = """import {a, b as c} from './x';
import d from "../y";
import * as ns from './z';
import type { T } from './t';
import React from 'react';
const q = require('./r');
"""


def test_python_imports() -> None:
    assert parse_imports(PY, "python") == [
        Import("os", alias="os"),
        Import("pkg.sub", alias="sub"),
        Import("pkg.util", 0, (("helper", "helper"), ("O", "Other"))),
        Import("", 1, (("sibling", "sibling"),)),
        Import("shared.mod", 2, (("a", "a"), ("b", "b"))),
        Import("m", 0, ()),
    ]  # the nested (conditional) import is not a top-level one


def test_script_imports() -> None:
    found = parse_imports(TS, "typescript")
    assert found == [
        Import("./x", 0, (("a", "a"), ("c", "b"))),
        Import("../y", 0, (("d", "default"),)),
        Import("./z", 0, (), "ns"),
        Import("./t", 0, (("T", "T"),)),
        Import("react", 0, (("React", "default"),)),
    ]
    assert parse_imports(TS, "javascript")[0] == found[0]


@pytest.mark.parametrize("language", ["go", "markdown", ""])
def test_unsupported_languages_have_no_imports(language: str) -> None:
    assert parse_imports("import x\n", language) == []


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_python_resolution_absolute_relative_and_submodules(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "pkg/__init__.py": "X = 1\n",
            "pkg/util.py": "def helper(): pass\n",
            "pkg/sub/__init__.py": "",
            "pkg/app/main.py": "",
            "pkg/app/sibling.py": "",
            "src/lib.py": "",
        },
    )
    current = tmp_path / "pkg/app/main.py"
    imports = parse_imports(
        "from pkg.util import helper\nfrom pkg import util, X\nfrom . import sibling\n"
        "from .. import util as u2\nimport pkg.sub\nimport lib\nimport missing\n",
        "python",
    )
    targets = resolve(imports, current, tmp_path, "python")
    assert targets == [
        Target(tmp_path / "pkg/util.py", (("helper", "helper"),)),
        Target(tmp_path / "pkg/__init__.py", (("X", "X"),)),
        Target(tmp_path / "pkg/util.py", alias="util"),  # a submodule: used as util.name
        Target(current.parent / "sibling.py", alias="sibling"),
        Target(tmp_path / "pkg/util.py", alias="u2"),
        Target(tmp_path / "pkg/sub/__init__.py", alias="pkg.sub"),
        Target(tmp_path / "src/lib.py", alias="lib"),
    ]


def test_nothing_outside_the_root_is_resolved(tmp_path: Path) -> None:
    _tree(tmp_path, {"secret.py": "TOKEN = 1\n", "ws/main.py": "", "ws/b.ts": ""})
    root = tmp_path / "ws"
    assert resolve(parse_imports("from .. import secret\n", "python"), root / "main.py", root, "python") == []
    outside = parse_imports("import {x} from '../secret';\n", "typescript")
    assert resolve(outside, root / "b.ts", root, "typescript") == []


def test_script_resolution_extensions_and_index(tmp_path: Path) -> None:
    _tree(tmp_path, {"src/x.ts": "", "src/lib/index.tsx": "", "src/esm.ts": "", "src/app.ts": ""})
    current = tmp_path / "src/app.ts"
    imports = parse_imports(
        "import {a} from './x';\nimport L from './lib';\nimport {e} from './esm.js';\n"
        "import R from 'react';\nimport {n} from './none';\n",
        "typescript",
    )
    assert [t.path for t in resolve(imports, current, tmp_path, "typescript")] == [
        current.parent / "x.ts",
        current.parent / "lib/index.tsx",
        current.parent / "esm.ts",
    ]


def test_used_names_latest_use_first() -> None:
    target = Target(Path("u.py"), (("helper", "helper"), ("O", "Other"), ("unused", "unused")), alias="")
    query = "x = O()\ny = helper(x)\nnot_helper = 1\n"
    assert used_names(target, query) == ["helper", "Other"]
    module = Target(Path("u.py"), alias="util")
    assert used_names(module, "util.first()\nutil.second\nmyutil.third\n") == ["second", "first"]


def test_reader_prefers_the_editors_text(tmp_path: Path) -> None:
    path = tmp_path / "a.py"
    path.write_text("on disk\n")
    assert reader({})(path) == "on disk\n"
    assert reader({str(path): "unsaved\n"})(path) == "unsaved\n"
    assert reader({})(tmp_path / "missing.py") is None
    assert reader({}, limit=3)(path) is None
