"""Completion quality: how much of a hole in real code each FIM path gets right, through the real LSP path.

Holes are cut (seeded, so every run asks the same questions) from the running interpreter's standard
library ``.py`` files: code nobody here wrote or tuned prompts on. Two kinds, alternating:

- **single**: a line cut after an operator, bracket or space; the truth is the rest of that line;
- **multi**: the body of a ``def``/``if``/``for``... header; the cursor sits after the first body line's
  indentation and the truth is up to four lines of the body.

Each hole is a document opened in ``python -m llamita.lsp`` (the language server editors run, over
stdio) and completed with an *invoked* inline-completion request, greedy (temperature 0), against a live
model server (``llamita serve``; ``--url``). The same holes go through each FIM path side by side in one
run: ``raw`` (today's fallback: the StarCoder raw template, ``fimTemplate: starcoder2``) and ``chat``
(the chat fill-in, ``fimTemplate: chat``). Per path and kind it prints the share of requests with a
suggestion, exact match (trailing whitespace aside), edit similarity (``difflib`` ratio, 0 for no
suggestion) and accepted characters per request (the common prefix of suggestion and truth: what a
user keeps accepting word by word).

JS/TS and Go trees are not included yet (none is installed here); the stdlib gives Python only.

Usage: ``.venv/bin/python bench/quality.py [--url URL] [--model smollm2:135m] [--holes 40] [--smoke]``.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import os
import random
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

MODES = {"raw": "starcoder2", "chat": "chat"}
KINDS = ("single", "multi")
MAX_BODY = 4
_CUT_AFTER = " (=[,:"


@dataclass(frozen=True)
class Hole:
    name: str
    kind: str
    text: str  # the document with the hole removed
    offset: int  # the cursor, a str index into text
    truth: str


@dataclass(frozen=True)
class Score:
    shown: bool
    exact: bool
    similarity: float
    accepted: int


def stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(p for p in root.glob("*.py") if 2_000 < p.stat().st_size < 200_000)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _code(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith(("#", "@")) and '"""' not in line and "'''" not in line


def cut_single(name: str, lines: list[str], rng: random.Random) -> Hole | None:
    candidates = [i for i, line in enumerate(lines) if _code(line) and len(line.strip()) >= 12]
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
    return Hole(f"{name}:{i + 1}", "single", before + after, len(before), line[j:])


def cut_multi(name: str, lines: list[str], rng: random.Random) -> Hole | None:
    candidates = [
        i
        for i, line in enumerate(lines[:-1])
        if _code(line) and line.rstrip().endswith(":") and _code(lines[i + 1])
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
    return Hole(f"{name}:{i + 2}", "multi", before + after, len(before), truth)


def cut_holes(n: int, seed: int, files: list[Path] | None = None) -> list[Hole]:
    """``n`` holes, alternating single and multi, the same for the same seed and interpreter."""
    rng = random.Random(seed)
    files = files if files is not None else stdlib_files()
    holes: list[Hole] = []
    for _ in range(n * 20):
        if len(holes) >= n:
            break
        path = rng.choice(files)
        lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
        cut = cut_single if len(holes) % 2 == 0 else cut_multi
        hole = cut(path.name, lines, rng)
        if hole is not None:
            holes.append(hole)
    return holes


def score(suggestion: str | None, truth: str) -> Score:
    if not suggestion:
        return Score(False, False, 0.0, 0)
    common = next(
        (k for k, (a, b) in enumerate(zip(suggestion, truth, strict=False)) if a != b),
        min(len(suggestion), len(truth)),
    )
    return Score(
        True,
        suggestion.rstrip() == truth.rstrip(),
        difflib.SequenceMatcher(None, suggestion, truth).ratio(),
        common,
    )


async def _start(url: str, model: str, template: str, num_predict: int, context: int) -> LanguageClient:
    client = LanguageClient("bench-quality", "1")
    client.feature(types.WINDOW_LOG_MESSAGE)(lambda params: None)
    client.feature(types.WINDOW_SHOW_MESSAGE)(
        lambda params: print("server:", params.message, file=sys.stderr)
    )
    await client.start_io(sys.executable, "-m", "llamita.lsp", env=dict(os.environ))
    caps = types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            inline_completion=types.InlineCompletionClientCapabilities()
        )
    )
    options = {
        "serverUrl": url,
        "completionModel": model,
        "fimTemplate": template,
        "debounceMs": 0,
        "snippetTokens": 0,
        "temperature": 0,
        "numPredict": num_predict,
        "contextTokens": context,
        "keepAlive": "30m",
    }
    await client.initialize_async(types.InitializeParams(capabilities=caps, initialization_options=options))
    client.initialized(types.InitializedParams())
    return client


def _position(text: str, offset: int) -> types.Position:
    line = text.count("\n", 0, offset)
    return types.Position(line, offset - (text.rfind("\n", 0, offset) + 1))


async def complete(client: LanguageClient, uri: str, hole: Hole) -> str | None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "python", 1, hole.text))
    )
    try:
        result = await client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri),
                position=_position(hole.text, hole.offset),
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
            )
        )
    finally:
        client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
    items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
    text = items[0].insert_text if items else None
    return text if isinstance(text, str) else None


async def run_mode(
    url: str, model: str, mode: str, holes: list[Hole], num_predict: int, context: int
) -> list[str | None]:
    client = await _start(url, model, MODES[mode], num_predict, context)
    try:
        return [await complete(client, f"file:///quality/{mode}/{k}.py", h) for k, h in enumerate(holes)]
    finally:
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()


async def compare(
    url: str, model: str, holes: list[Hole], num_predict: int, context: int = 512
) -> dict[str, list[Score]]:
    """Every hole through every mode, one language server per mode (so no cache is shared)."""
    results: dict[str, list[Score]] = {}
    for mode in MODES:
        answers = await run_mode(url, model, mode, holes, num_predict, context)
        results[mode] = [score(a, h.truth) for h, a in zip(holes, answers, strict=True)]
    return results


def table(holes: list[Hole], results: dict[str, list[Score]]) -> list[dict[str, Any]]:
    rows = []
    for kind in KINDS:
        for mode, scores in results.items():
            picked = [s for h, s in zip(holes, scores, strict=True) if h.kind == kind]
            n = len(picked) or 1
            rows.append(
                {
                    "mode": mode,
                    "kind": kind,
                    "holes": len(picked),
                    "shown": sum(s.shown for s in picked) / n,
                    "exact": sum(s.exact for s in picked) / n,
                    "edit_sim": sum(s.similarity for s in picked) / n,
                    "accepted_chars": sum(s.accepted for s in picked) / n,
                }
            )
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"{'mode':<6}{'kind':<8}{'holes':>6}{'shown':>8}{'exact':>8}{'edit_sim':>10}{'accepted/req':>14}"
    ]
    for r in rows:
        lines.append(
            f"{r['mode']:<6}{r['kind']:<8}{r['holes']:>6}{r['shown']:>8.0%}{r['exact']:>8.0%}"
            f"{r['edit_sim']:>10.2f}{r['accepted_chars']:>14.1f}"
        )
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    host = os.environ.get("OLLAMA_HOST", "127.0.0.1:11434")
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", default=host if "://" in host else f"http://{host}")
    parser.add_argument("--model", default="smollm2:135m")
    parser.add_argument("--holes", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-predict", type=int, default=64)
    parser.add_argument(
        "--context-tokens", type=int, default=512, help="the LSP's FIM window (contextTokens)"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="4 holes, 16 tokens: checks the path, not quality"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.holes, args.num_predict, args.context_tokens = 4, 16, 256
    return args


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse(argv)
    holes = cut_holes(args.holes, args.seed)
    results = asyncio.run(compare(args.url, args.model, holes, args.num_predict, args.context_tokens))
    rows = table(holes, results)
    head = f"{args.model} at {args.url}: {len(holes)} stdlib holes (seed {args.seed})"
    print(f"{head}, greedy, up to {args.num_predict} tokens, {args.context_tokens}-token window")
    print(render(rows))
    return rows


if __name__ == "__main__":
    main()
