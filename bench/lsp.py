"""Language-server benchmark: what ``llamita lsp`` adds around each model call, and its cache.

(a) Overhead per completion, p50/p95 over ``--requests`` inline-completion requests at distinct positions of
    a 300-line Python file: *request in -> HTTP out* (JSON-RPC over stdio, context window, tree-sitter
    decision, request body) and *HTTP in -> response out* (filters, cache, JSON-RPC back). Debounce is 0.
(b) Typing replay: a 14-line function typed character by character at the end of the file, one automatic
    request per keystroke. The scripted model suggests the rest of the current line (an ideal model), so
    this is the cache's upper bound: requests answered without a model call, and how much of each prompt
    repeats the previous one (the keystroke-stable window lets the server reuse its KV cache).

The model server is an in-process scripted HTTP server (no model), so only the language server is
measured. Usage: ``.venv/bin/python bench/lsp.py [--requests 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

URI = "file:///bench/module.py"
BASE = "".join(
    f"def function_{i}(a, b):\n    total = a + b * {i}\n    if total > {i * 3}:\n"
    "        return total\n    return -total\n\n"
    for i in range(50)
)
TYPED = '''def describe(items):
    """Summarise a list of numbers."""
    if not items:
        return "empty"
    total = sum(items)
    mean = total / len(items)
    low, high = min(items), max(items)
    parts = [
        f"n={len(items)}",
        f"mean={mean:.2f}",
        f"range={low}..{high}",
    ]
    return ", ".join(parts)

'''


class ScriptedModel:
    """Answers /api/show and /api/generate; timestamps each generate (arrival, reply)."""

    def __init__(self) -> None:
        self.answer = "value = compute(a, b)\n    return value"
        self.calls: list[tuple[float, float, dict[str, Any]]] = []
        model = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes: without this, Nagle + delayed ACK add 40 ms.
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                arrived = time.perf_counter()
                if self.path == "/api/show":
                    reply: dict[str, Any] = {
                        "capabilities": ["completion", "insert"],
                        "details": {"family": "x"},
                    }
                else:
                    reply = {"response": model.answer if body.get("prompt") else "", "done": True}
                data = json.dumps(reply).encode()
                sent = time.perf_counter()
                if self.path == "/api/generate" and body.get("prompt"):
                    model.calls.append((arrived, sent, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def inline(position: types.Position, kind: types.InlineCompletionTriggerKind) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(URI),
        position=position,
        context=types.InlineCompletionContext(trigger_kind=kind),
    )


async def start(model: ScriptedModel) -> LanguageClient:
    client = LanguageClient("bench", "1")
    client.feature(types.WINDOW_LOG_MESSAGE)(lambda params: None)
    client.feature(types.WINDOW_SHOW_MESSAGE)(lambda params: print("server:", params.message))
    await client.start_io(sys.executable, "-m", "llamita.lsp", env=dict(os.environ))
    caps = types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            inline_completion=types.InlineCompletionClientCapabilities()
        )
    )
    options = {"serverUrl": model.url, "completionModel": "bench", "debounceMs": 0, "snippetTokens": 0}
    await client.initialize_async(types.InitializeParams(capabilities=caps, initialization_options=options))
    client.initialized(types.InitializedParams())
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(URI, "python", 1, BASE))
    )
    await asyncio.sleep(0.5)  # let the warm-up finish
    return client


async def overhead(
    client: LanguageClient, model: ScriptedModel, n: int, first: int = 0
) -> tuple[list[float], list[float]]:
    """Requests at line ends ``first``, ``first + 1``... (distinct contexts: every one asks the model)."""
    lines = BASE.split("\n")
    into: list[float] = []
    out: list[float] = []
    for i in range(first, first + n):
        row = i % (len(lines) - 1)
        before = len(model.calls)
        t0 = time.perf_counter()
        await client.text_document_inline_completion_async(
            inline(types.Position(row, len(lines[row])), types.InlineCompletionTriggerKind.Invoked)
        )
        t3 = time.perf_counter()
        if len(model.calls) == before + 1:
            arrived, sent, _ = model.calls[-1]
            into.append((arrived - t0) * 1000)
            out.append((t3 - sent) * 1000)
    return into, out


async def typing(client: LanguageClient, model: ScriptedModel) -> dict[str, float]:
    text = BASE
    version = 1
    row, col = BASE.count("\n"), 0
    answered = hits = 0
    reuse: list[float] = []
    for index, char in enumerate(TYPED):
        version += 1
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(version=version, uri=URI),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(types.Position(row, col), types.Position(row, col)), text=char
                    )
                ],
            )
        )
        text += char
        row, col = (row + 1, 0) if char == "\n" else (row, col + 1)
        rest = TYPED[index + 1 :]
        model.answer = rest.split("\n", 1)[0] if not rest.startswith("\n") else rest[:40]
        before = len(model.calls)
        result = await client.text_document_inline_completion_async(
            inline(types.Position(row, col), types.InlineCompletionTriggerKind.Automatic)
        )
        if result is not None and result.items:
            answered += 1
            hits += len(model.calls) == before
        if len(model.calls) > before and before > 0:
            previous, current = model.calls[before - 1][2]["prompt"], model.calls[-1][2]["prompt"]
            pairs = enumerate(zip(previous, current, strict=False))
            shared = next((i for i, (a, b) in pairs if a != b), min(len(previous), len(current)))
            reuse.append(shared / len(current))
    return {
        "keystrokes": len(TYPED),
        "model_calls": len(model.calls),
        "answered": answered,
        "cache_hits": hits,
        "prompt_reuse": statistics.mean(reuse) if reuse else 0.0,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    model = ScriptedModel()
    client = await start(model)
    await overhead(client, model, 10, first=len(BASE.split("\n")) - 11)  # warm: imports, grammar, connection
    model.calls.clear()
    into, out = await overhead(client, model, args.requests)
    total = [a + b for a, b in zip(into, out, strict=True)]
    print(f"(a) overhead per completion over {len(total)} requests (ms):")
    for name, values in (("request in -> HTTP out", into), ("HTTP in -> response out", out), ("both", total)):
        print(f"    {name:<24} p50 {percentile(values, 0.5):6.2f}   p95 {percentile(values, 0.95):6.2f}")
    model.calls.clear()
    replay = await typing(client, model)
    rate = replay["cache_hits"] / replay["keystrokes"]
    print(
        f"(b) typing replay: {replay['keystrokes']} keystrokes, {replay['model_calls']} model calls, "
        f"{replay['answered']} suggestions shown, {replay['cache_hits']} from the cache "
        f"(hit rate {rate:.0%} of keystrokes); consecutive prompts share "
        f"{replay['prompt_reuse']:.0%} of their text"
    )
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    model.server.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
