"""The current file's top-level imports, resolved to files inside the workspace.

Cross-file context starts from what the file imports: the definitions of imported names are the code a
completion most often calls. Parsing is tree-sitter (the same grammars as :mod:`.syntax`), resolution is
file-system only (no interpreter, no ``node_modules``, no ``sys.path``), and nothing outside the workspace
root is ever read, so the model only sees the user's own project.

Supported::

    import pkg.mod [as m]               -> pkg/mod.py or pkg/mod/__init__.py; names used as m.name
    from pkg.mod import a, b as c       -> pkg/mod.py, names a and b
    from . import util / from .util import f   -> relative to the current file's package
    from pkg import util                -> pkg/util.py when it is a module, else pkg/__init__.py's util
    import {a, b as c} from './x'       -> x.ts/.tsx/.js/.jsx/.mjs/.cjs or x/index.* (JS/TS, relative only)
    import d from './x' / import * as ns from './x'

Absolute Python modules are looked up under the root, ``root/src`` and the current file's folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .syntax import parser_for

PYTHON = ("python",)
SCRIPT = ("javascript", "javascriptreact", "typescript", "typescriptreact")
_SCRIPT_SUFFIXES = (".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".d.ts")
MAX_TARGETS = 8


@dataclass(frozen=True)
class Import:
    """One import statement: the module as written, and the names it binds in the current file.

    ``names`` maps the local name to the name in the imported file; ``alias`` is the local name bound to
    the module itself (``import a.b``, ``import * as ns``), whose members are used as ``alias.name``.
    """

    module: str
    level: int = 0
    names: tuple[tuple[str, str], ...] = ()
    alias: str = ""


@dataclass(frozen=True)
class Target:
    """An imported file and which of its top-level names the current file can reach."""

    path: Path
    names: tuple[tuple[str, str], ...] = ()
    alias: str = ""


def supported(language_id: str) -> bool:
    return language_id in PYTHON or language_id in SCRIPT


def parse_imports(text: str, language_id: str) -> list[Import]:
    """The top-level import statements of ``text`` (nested ones are conditional: skipped)."""
    parser = parser_for(language_id)
    if parser is None or not supported(language_id):
        return []
    root = parser.parse(text.encode("utf-8")).root_node
    parse = _python_import if language_id in PYTHON else _script_import
    return [imp for node in root.children if (imp := parse(node)) is not None]


def _text(node: Any) -> str:
    return bytes(node.text).decode("utf-8", "replace")


def _python_import(node: Any) -> Import | None:
    if node.type == "import_statement":
        # ``import a.b, c as d``: one statement, several modules; the first one is enough context.
        for child in node.children_by_field_name("name"):
            if child.type == "aliased_import":
                name = child.child_by_field_name("name")
                alias = child.child_by_field_name("alias")
                return Import(_text(name), alias=_text(alias)) if name and alias else None
            return Import(_text(child), alias=_text(child))
        return None
    if node.type != "import_from_statement":
        return None
    module_node = node.child_by_field_name("module_name")
    if module_node is None:
        return None
    level, module = 0, _text(module_node)
    if module_node.type == "relative_import":
        dots = len(module) - len(module.lstrip("."))
        level, module = dots, module[dots:]
    names: list[tuple[str, str]] = []
    for child in node.children_by_field_name("name"):
        if child.type == "aliased_import":
            name, alias = child.child_by_field_name("name"), child.child_by_field_name("alias")
            if name is not None and alias is not None:
                names.append((_text(alias), _text(name)))
        else:
            names.append((_text(child), _text(child)))
    return Import(module, level, tuple(names))


def _script_import(node: Any) -> Import | None:
    if node.type != "import_statement":
        return None
    source = node.child_by_field_name("source")
    if source is None:
        return None
    module = _text(source).strip("'\"`")
    names: list[tuple[str, str]] = []
    alias = ""
    for clause in (c for c in node.children if c.type == "import_clause"):
        for part in clause.children:
            if part.type == "identifier":  # default import
                names.append((_text(part), "default"))
            elif part.type == "namespace_import":
                ident = next((c for c in part.children if c.type == "identifier"), None)
                alias = _text(ident) if ident is not None else ""
            elif part.type == "named_imports":
                for spec in (c for c in part.children if c.type == "import_specifier"):
                    name, local = spec.child_by_field_name("name"), spec.child_by_field_name("alias")
                    if name is not None:
                        names.append((_text(local or name), _text(name)))
    return Import(module, 0, tuple(names), alias)


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root)
    except OSError:
        return False


def _same(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def _python_module(base: Path, dotted: str) -> Path | None:
    parts = [p for p in dotted.split(".") if p]
    stem = base.joinpath(*parts) if parts else base
    for candidate in (stem.with_name(stem.name + ".py") if parts else None, stem / "__init__.py"):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def _python_targets(imp: Import, current: Path, root: Path) -> list[Target]:
    if imp.level:
        base = current.parent
        for _ in range(imp.level - 1):
            base = base.parent
        bases = [base]
    else:
        bases = list(dict.fromkeys([root, root / "src", current.parent]))
    for base in bases:
        module = _python_module(base, imp.module)
        package_dir = base.joinpath(*[p for p in imp.module.split(".") if p])
        targets: list[Target] = []
        rest: list[tuple[str, str]] = []
        for local, name in imp.names:
            # ``from pkg import util``: util may be a submodule rather than a name defined in pkg.
            submodule = _python_module(package_dir, name) if name != "*" else None
            if submodule is not None and submodule != module:
                targets.append(Target(submodule, alias=local))
            else:
                rest.append((local, name))
        if module is not None and (rest or imp.alias or not imp.names):
            targets.insert(0, Target(module, tuple(rest), imp.alias))
        if targets:
            return targets
    return []


def _script_targets(imp: Import, current: Path) -> list[Target]:
    if not imp.module.startswith("."):
        return []  # packages (node_modules) are not the user's code
    stem = current.parent / imp.module
    candidates = [stem] if stem.suffix in _SCRIPT_SUFFIXES else []
    if stem.suffix in (".js", ".jsx", ".mjs"):  # TS ESM style: './x.js' names x.ts
        candidates += [stem.with_suffix(s) for s in (".ts", ".tsx")]
    candidates += [stem.with_name(stem.name + s) for s in _SCRIPT_SUFFIXES]
    candidates += [stem / f"index{s}" for s in _SCRIPT_SUFFIXES]
    found = next((c for c in candidates if c.is_file()), None)
    return [Target(found, imp.names, imp.alias)] if found is not None else []


def resolve(imports: list[Import], current: str | Path, root: str | Path, language_id: str) -> list[Target]:
    """The files ``imports`` name, inside ``root`` (the current file's folder when there is no root)."""
    current = Path(current)
    base = Path(root) if root else current.parent
    try:
        base = base.resolve()
    except OSError:
        return []
    out: list[Target] = []
    seen: set[tuple[Path, str]] = set()
    for imp in imports:
        found = (
            _python_targets(imp, current, base) if language_id in PYTHON else _script_targets(imp, current)
        )
        for target in found:
            key = (target.path, target.alias)
            if key in seen or not _inside(target.path, base) or _same(target.path, current):
                continue
            seen.add(key)
            out.append(target)
            if len(out) >= MAX_TARGETS:
                return out
    return out


def used_names(target: Target, query: str) -> list[str]:
    """Names of ``target`` that ``query`` (the code before the cursor) uses, the latest use first.

    A direct import counts where its local name appears; a module alias counts through ``alias.name``.
    """
    last: dict[str, int] = {}
    for local, name in target.names:
        for match in re.finditer(rf"(?<![\w.]){re.escape(local)}\b", query):
            last[name] = max(last.get(name, -1), match.start())
    if target.alias:
        for match in re.finditer(rf"(?<![\w.]){re.escape(target.alias)}\.(\w+)", query):
            last[match.group(1)] = max(last.get(match.group(1), -1), match.start())
    return sorted(last, key=lambda n: -last[n])


_DISK: dict[str, tuple[int, int, str]] = {}  # path -> (mtime_ns, size, text): one read per file version
_DISK_FILES = 64


def reader(buffers: dict[str, str], limit: int = 512_000) -> Callable[[Path], str | None]:
    """Read a file, preferring the editor's unsaved text (``buffers``: absolute path → text).

    Disk reads are cached by modification time and size, so every keystroke gets the same ``str``
    object back and the parse caches downstream (keyed by text) hit without re-hashing new copies.
    """

    def read(path: Path) -> str | None:
        text = buffers.get(str(path))
        if text is None:
            text = buffers.get(os.path.realpath(path))
        if text is not None:
            return text
        try:
            stat = path.stat()
            if stat.st_size > limit:
                return None
            key = str(path)
            cached = _DISK.get(key)
            if cached is not None and cached[:2] == (stat.st_mtime_ns, stat.st_size):
                return cached[2]
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        if len(_DISK) >= _DISK_FILES:
            _DISK.pop(next(iter(_DISK)))
        _DISK[key] = (stat.st_mtime_ns, stat.st_size, text)
        return text

    return read
