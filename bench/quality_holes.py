"""Holes cut from real source files, per language, for ``bench/quality.py``.

Two kinds, alternating, the same for the same seed and files:

- **single**: a code line cut after an operator, bracket or space (the next character not a space); the
  truth is the rest of that line;
- **multi**: the body of a block header (Python's ``def``/``if``/``for``... ending in ``:``, a JS or Go
  line ending in ``{``); the cursor sits after the first body line's indentation and the truth is up to
  :data:`MAX_BODY` lines of the body.

Comment and docstring lines are never cut (a model is not judged on prose). Everything here is pure: the
only input is the files' text, so the tests check that every hole put back gives the original file.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MAX_BODY = 4
MIN_LINE = 12
_CUT_AFTER = " (=[,:"
_COMMENTS = {"python": ("#", "@"), "javascript": ("//", "/*", "*"), "go": ("//", "/*", "*")}
_OPENERS = {"python": ":", "javascript": "{", "go": "{"}
_STRING_FENCES = {"python": ('"""', "'''"), "javascript": ("`",), "go": ("`",)}


@dataclass(frozen=True)
class Hole:
    name: str  # file:line of the cut
    kind: str  # "single" or "multi"
    text: str  # the document with the hole removed
    offset: int  # the cursor, a str index into text
    truth: str
    language: str = "python"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def code_lines(lines: list[str], language: str) -> list[bool]:
    """Per line, whether it is worth cutting: code, not blank, not a comment or decorator, and not inside
    (or opening, or closing) a multi-line string or block comment, tracked by counting fences."""
    fences = _STRING_FENCES[language]
    flags: list[bool] = []
    inside: str | None = None  # the fence or comment opener of the region the line is in
    for line in lines:
        stripped = line.strip()
        was_inside = inside is not None
        if inside == "/*":
            inside = None if "*/" in line else inside
        elif inside is not None:
            inside = None if line.count(inside) % 2 else inside
        else:
            opened = next((f for f in fences if line.count(f) % 2), None)
            if opened is None and language != "python" and "/*" in line and "*/" not in line:
                opened = "/*"
            inside = opened
        touches_string = was_inside or inside is not None or any(f in line for f in fences)
        flags.append(bool(stripped) and not stripped.startswith(_COMMENTS[language]) and not touches_string)
    return flags


def opens_block(line: str, language: str) -> bool:
    return line.rstrip().endswith(_OPENERS[language])


def cut_single(name: str, lines: list[str], rng: random.Random, language: str = "python") -> Hole | None:
    code = code_lines(lines, language)
    candidates = [i for i, line in enumerate(lines) if code[i] and len(line.strip()) >= MIN_LINE]
    if not candidates:
        return None
    i = rng.choice(candidates)
    line = lines[i].rstrip()
    cuts = [
        j for j in range(_indent(line) + 2, len(line) - 3) if line[j - 1] in _CUT_AFTER and line[j] != " "
    ]
    if not cuts:
        return None
    j = rng.choice(cuts)
    before = "\n".join([*lines[:i], line[:j]])
    after = "\n" + "\n".join(lines[i + 1 :])
    return Hole(f"{name}:{i + 1}", "single", before + after, len(before), line[j:], language)


def cut_multi(name: str, lines: list[str], rng: random.Random, language: str = "python") -> Hole | None:
    code = code_lines(lines, language)
    candidates = [
        i
        for i, line in enumerate(lines[:-1])
        if code[i] and opens_block(line, language) and code[i + 1]
        and _indent(lines[i + 1]) > _indent(line)
    ]  # fmt: skip
    if not candidates:
        return None
    i = rng.choice(candidates)
    depth = _indent(lines[i + 1])
    body: list[str] = []
    for line in lines[i + 1 : i + 1 + MAX_BODY]:
        if not line.strip() or _indent(line) < depth:
            break
        body.append(line.rstrip())
    before = "\n".join([*lines[: i + 1], body[0][:depth]])
    after = "\n" + "\n".join(lines[i + 1 + len(body) :])
    truth = "\n".join([body[0][depth:], *body[1:]])
    return Hole(f"{name}:{i + 2}", "multi", before + after, len(before), truth, language)


Cutter = Callable[[str, list[str], random.Random, str], "Hole | None"]
CUTTERS: tuple[Cutter, Cutter] = (cut_single, cut_multi)


def cut_holes(n: int, seed: int, files: list[Path], language: str = "python") -> list[Hole]:
    """``n`` holes from ``files``, alternating single and multi.

    Each language has its own random stream (seeded with the seed and the language), so adding or
    missing a tree never changes another language's holes.
    """
    rng = random.Random(f"{seed}:{language}")
    holes: list[Hole] = []
    for _ in range(n * 20):
        if len(holes) >= n or not files:
            break
        path = rng.choice(files)
        lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
        hole = CUTTERS[len(holes) % 2](path.name, lines, rng, language)
        if hole is not None:
            holes.append(hole)
    return holes
