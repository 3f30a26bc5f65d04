"""Completion quality: how much of a hole in real code each FIM path gets right, through the real LSP path.

Holes are cut (seeded, so every run asks the same questions; ``quality_holes.py``) from real code nobody
here wrote or tuned prompts on (``quality_sources.py``): the interpreter's standard library (Python),
``lodash-es`` 4.17.21 from npm (JavaScript) and ``spf13/cobra`` 1.6.1 from Debian (Go), the last two
fetched by ``make quality-sources`` into ``bench/.sources/``; a tree that is missing is named and skipped.
Two kinds, alternating: **single** (the rest of a line cut after an operator, bracket or space) and
**multi** (up to four body lines of a block header: ``def``/``if``/``for`` in Python, a ``{`` line in JS/Go).

Each hole is a document opened in ``python -m llamita.lsp`` (the language server editors run, over
stdio, with the hole's language id and file extension) and completed with an *invoked* inline-completion
request, greedy (temperature 0), against a live model server (``llamita serve``; ``--url``). The same
holes go through each FIM path side by side, one language server per path: ``raw`` (the StarCoder raw
template, ``fimTemplate: starcoder2``), ``chat`` (the chat fill-in, ``fimTemplate: chat``) and
``native`` (the model's own FIM tokens through its Suffix template: only for a model with the ``insert``
capability, skipped otherwise). Per language, kind and path, and over all languages, it prints the share
of requests with a suggestion, exact match (trailing whitespace aside), edit similarity (``difflib``
ratio, 0 for no suggestion), accepted characters per request (the common prefix of suggestion and
truth: what a user keeps accepting word by word) and ``failed``: requests that errored (the model server
failed or did not answer within the timeout, after two retries on a transport error).

Usage: ``.venv/bin/python bench/quality.py [--url URL] [--model smollm2:135m] [--holes 20]
[--languages python,javascript,go] [--modes raw,chat,native] [--smoke]`` (``--holes`` per language).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import difflib
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from lsprotocol import types
from pygls.lsp.client import LanguageClient
from quality_holes import Hole
from quality_holes import cut_holes as _cut_holes
from quality_sources import LANGUAGES, TREES, MissingTree, files

MODES = {"raw": "starcoder2", "chat": "chat", "native": ""}  # mode -> the LSP's fimTemplate setting
KINDS = ("single", "multi")
TIMEOUT = 600.0  # per request: CPU inference under load is slow
RETRIES = 2  # on a transport error
RETRY_PAUSE = 6.0  # the LSP skips requests for 5 s after the model server was unreachable
_TRANSPORT = "llamita: no model server answers"
_ERRORS = ("llamita: completion request failed", "llamita: model ", "llamita: FIM template")
_PATH = re.compile(r"^completion model .+: (.+)$")


@dataclass(frozen=True)
class Score:
    shown: bool
    exact: bool
    similarity: float
    accepted: int
    failed: bool = False
    text: str = field(default="", compare=False)  # the suggestion, for --dump


@dataclass
class Session:
    """One language server for one mode, and what it logged (errors and the FIM path it chose)."""

    client: LanguageClient
    log: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        return next((m.group(1) for m in map(_PATH.match, self.log) if m), "?")


def stdlib_files() -> list[Path]:
    return files("python")


def cut_holes(n: int, seed: int, paths: list[Path] | None = None, language: str = "python") -> list[Hole]:
    """``n`` holes of one language, alternating single and multi, the same for the same seed and tree."""
    return _cut_holes(n, seed, paths if paths is not None else files(language), language)


def score(suggestion: str | None, truth: str, failed: bool = False) -> Score:
    if not suggestion:
        return Score(False, False, 0.0, 0, failed)
    common = next(
        (k for k, (a, b) in enumerate(zip(suggestion, truth, strict=False)) if a != b),
        min(len(suggestion), len(truth)),
    )
    return Score(
        True,
        suggestion.rstrip() == truth.rstrip(),
        difflib.SequenceMatcher(None, suggestion, truth).ratio(),
        common,
        failed,
        suggestion,
    )


async def _start(url: str, model: str, template: str, num_predict: int, context: int) -> Session:
    client = LanguageClient("bench-quality", "1")
    session = Session(client)
    client.feature(types.WINDOW_LOG_MESSAGE)(lambda params: session.log.append(params.message))
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
        "requestTimeoutSeconds": 600,  # the 2-core box under load: a slow answer is not a failure
    }
    await client.initialize_async(types.InitializeParams(capabilities=caps, initialization_options=options))
    client.initialized(types.InitializedParams())
    return session


def _position(text: str, offset: int) -> types.Position:
    line = text.count("\n", 0, offset)
    return types.Position(line, offset - (text.rfind("\n", 0, offset) + 1))


async def _ask(session: Session, uri: str, hole: Hole, timeout: float) -> tuple[str | None, str]:
    """One request: the suggestion, and "" / "transport" / "error" from the reply and the server's log."""
    seen = len(session.log)
    try:
        result = await asyncio.wait_for(
            session.client.text_document_inline_completion_async(
                types.InlineCompletionParams(
                    text_document=types.TextDocumentIdentifier(uri),
                    position=_position(hole.text, hole.offset),
                    context=types.InlineCompletionContext(
                        trigger_kind=types.InlineCompletionTriggerKind.Invoked
                    ),
                )
            ),
            timeout,
        )
    except (TimeoutError, ConnectionError):
        return None, "transport"
    except Exception:  # a JSON-RPC error reply: the language server failed on this request
        return None, "error"
    logged = session.log[seen:]
    if any(m.startswith(_TRANSPORT) for m in logged):
        return None, "transport"
    if any(m.startswith(_ERRORS) for m in logged):
        return None, "error"
    items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
    text = items[0].insert_text if items else None
    return (text if isinstance(text, str) else None), ""


async def complete(
    session: Session, uri: str, hole: Hole, timeout: float = TIMEOUT
) -> tuple[str | None, bool]:
    """The suggestion for ``hole`` and whether the request failed (after retries on transport errors)."""
    client = session.client
    document = types.TextDocumentItem(uri, hole.language, 1, hole.text)
    client.text_document_did_open(types.DidOpenTextDocumentParams(document))
    try:
        for attempt in range(RETRIES + 1):
            text, problem = await _ask(session, uri, hole, timeout)
            if problem != "transport" or attempt == RETRIES:
                return text, bool(problem)
            await asyncio.sleep(RETRY_PAUSE)
        return None, True
    finally:
        client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))


async def run_mode(
    url: str, model: str, mode: str, holes: list[Hole], num_predict: int, context: int
) -> tuple[list[tuple[str | None, bool]], str]:
    """Every hole through one language server; also the FIM path that server reported choosing."""
    session = await _start(url, model, MODES[mode], num_predict, context)
    client = session.client
    try:
        answers = [
            await complete(session, f"file:///quality/{mode}/{k}{TREES[h.language].extension}", h)
            for k, h in enumerate(holes)
        ]
        return answers, session.path
    finally:
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()


async def compare(
    url: str,
    model: str,
    holes: list[Hole],
    num_predict: int,
    context: int = 512,
    modes: tuple[str, ...] = ("raw", "chat"),
) -> tuple[dict[str, list[Score]], dict[str, str]]:
    """Every hole through every mode, one language server per mode (so no cache is shared)."""
    results: dict[str, list[Score]] = {}
    paths: dict[str, str] = {}
    for mode in modes:
        answers, paths[mode] = await run_mode(url, model, mode, holes, num_predict, context)
        results[mode] = [score(a, h.truth, failed) for h, (a, failed) in zip(holes, answers, strict=True)]
    return results, paths


def supports_insert(url: str, model: str) -> bool:
    """Whether ``model`` has native FIM (``insert`` in ``/api/show``'s capabilities)."""
    reply = httpx.post(f"{url}/api/show", json={"model": model}, timeout=60)
    reply.raise_for_status()
    return "insert" in (reply.json().get("capabilities") or [])


def dump(holes: list[Hole], results: dict[str, list[Score]]) -> list[dict[str, Any]]:
    """Per hole: where it is, the truth, and each mode's suggestion and score (to read, not to tune on)."""
    return [
        {
            "name": h.name,
            "language": h.language,
            "kind": h.kind,
            "before": h.text[max(0, h.offset - 80) : h.offset],
            "truth": h.truth,
            **{mode: dataclasses.asdict(scores[k]) for mode, scores in results.items()},
        }
        for k, h in enumerate(holes)
    ]


def _row(language: str, kind: str, mode: str, picked: list[Score]) -> dict[str, Any]:
    n = len(picked) or 1
    return {
        "language": language,
        "mode": mode,
        "kind": kind,
        "holes": len(picked),
        "shown": sum(s.shown for s in picked) / n,
        "exact": sum(s.exact for s in picked) / n,
        "edit_sim": sum(s.similarity for s in picked) / n,
        "accepted_chars": sum(s.accepted for s in picked) / n,
        "failed": sum(s.failed for s in picked),
    }


def table(holes: list[Hole], results: dict[str, list[Score]]) -> list[dict[str, Any]]:
    """Rows per language and kind, then over all languages per kind and in all (``all``)."""
    languages = list(dict.fromkeys(h.language for h in holes))
    groups = [(lang, kind) for lang in languages for kind in KINDS] + [("all", k) for k in (*KINDS, "all")]
    rows = []
    for language, kind in groups:
        for mode, scores in results.items():
            picked = [
                s
                for h, s in zip(holes, scores, strict=True)
                if language in ("all", h.language) and kind in ("all", h.kind)
            ]
            rows.append(_row(language, kind, mode, picked))
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"{'language':<11}{'kind':<8}{'mode':<8}{'holes':>6}{'shown':>8}{'exact':>8}{'edit_sim':>10}"
        f"{'accepted/req':>14}{'failed':>8}"
    ]
    for r in rows:
        lines.append(
            f"{r['language']:<11}{r['kind']:<8}{r['mode']:<8}{r['holes']:>6}{r['shown']:>8.0%}"
            f"{r['exact']:>8.0%}{r['edit_sim']:>10.2f}{r['accepted_chars']:>14.1f}{r['failed']:>8}"
        )
    return "\n".join(lines)


def _names(text: str, known: tuple[str, ...], what: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = set(names) - set(known)
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{what}: choose from {', '.join(known)}")
    return names


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    host = os.environ.get("OLLAMA_HOST", "127.0.0.1:11434")
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", default=host if "://" in host else f"http://{host}")
    parser.add_argument("--model", default="smollm2:135m")
    parser.add_argument("--holes", type=int, default=20, help="holes per language")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--languages", type=lambda t: _names(t, LANGUAGES, "languages"), default=LANGUAGES)
    parser.add_argument("--modes", type=lambda t: _names(t, tuple(MODES), "modes"), default=tuple(MODES))
    parser.add_argument("--num-predict", type=int, default=64)
    parser.add_argument(
        "--context-tokens", type=int, default=512, help="the LSP's FIM window (contextTokens)"
    )
    parser.add_argument("--dump", type=Path, help="write every hole, truth and suggestion here (JSON)")
    parser.add_argument(
        "--smoke", action="store_true", help="4 Python holes, 16 tokens: checks the path, not quality"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.holes, args.num_predict, args.context_tokens, args.languages = 4, 16, 256, ("python",)
    return args


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse(argv)
    holes: list[Hole] = []
    missing: list[str] = []
    for language in args.languages:
        try:
            holes += cut_holes(args.holes, args.seed, language=language)
        except MissingTree as e:
            missing.append(str(e))
    modes = args.modes
    if "native" in modes and not supports_insert(args.url, args.model):
        print(f"skipped native: {args.model} has no insert capability (no FIM tokens)", file=sys.stderr)
        modes = tuple(m for m in modes if m != "native")
    results, paths = asyncio.run(
        compare(args.url, args.model, holes, args.num_predict, args.context_tokens, modes)
    )
    rows = table(holes, results)
    if args.dump:
        args.dump.write_text(json.dumps(dump(holes, results), indent=1))
    counts = ", ".join(f"{lang} {sum(h.language == lang for h in holes)}" for lang in args.languages)
    print(
        f"{args.model} at {args.url}: holes {counts} (seed {args.seed}), greedy, up to "
        f"{args.num_predict} tokens, {args.context_tokens}-token window"
    )
    print("paths: " + ", ".join(f"{mode} = {path}" for mode, path in paths.items()))
    for line in missing:
        print(f"missing tree, skipped: {line}")
    print(render(rows))
    return rows


if __name__ == "__main__":
    main()
