"""Event-loop stalls while a long chat is truncated: a real ``llamita serve``, side by side in one run.

A server is started as a subprocess on a free port over a temporary store (the embedded
SmolLM2 is imported on start).  While one streaming ``/api/generate`` keeps the engine busy, a
probe thread asks ``/api/version`` over and over: an answer can only be late when the server's
event loop is blocked (or starved of the GIL), so the worst probe latency is the worst stall.
The worst stall is measured over an idle window (only the stream running), then while a
chat of ``--messages`` messages of ``--size`` bytes is posted at ``--num-ctx`` (it must be
truncated), twice: the first post evaluates the kept turns, the second finds them in the
prefix cache, so it is mostly the prologue (render, tokenize, truncate).  ``prologue_s`` is a
post's ``total_duration`` less load, prompt evaluation and generation.  The stream's worst gap
between NDJSON lines is printed too; it also grows while the chat's prefill shares the steps.

Usage: ``.venv/bin/python bench/loopstall.py [--messages 200] [--size 2048] [--num-ctx 4096]``.
Not a test: the numbers depend on the machine; compare the stall during truncation with idle.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

MODEL = "smollm2:135m"
WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "this",
    "are",
    "or",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
]


def note(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, models: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OLLAMA_HOST": f"127.0.0.1:{port}", "OLLAMA_MODELS": str(models)}
    env["OLLAMA_NUM_PARALLEL"] = "2"  # the stream and the chat run side by side
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llamita.server.cli", "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"llamita serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/version", timeout=1).raise_for_status()
            return proc
        except httpx.TransportError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"llamita serve did not answer:\n{log.read_text()}") from None
            time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Probe(threading.Thread):
    """Asks ``/api/version`` back to back; keeps (sent, latency) of every answer."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.samples: list[tuple[float, float]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=60) as client:
            while not self.stopping.is_set():
                sent = time.perf_counter()
                client.get(self.url + "/api/version").raise_for_status()
                self.samples.append((sent, time.perf_counter() - sent))
                time.sleep(0.002)

    def worst(self, start: float, end: float) -> tuple[float, int]:
        """The worst latency of a probe sent in [start, end), and how many were sent."""
        window = [latency for sent, latency in self.samples if start <= sent < end]
        return (max(window) if window else float("nan")), len(window)


class Stream(threading.Thread):
    """One streaming generate that keeps decoding; keeps the arrival time of every line."""

    def __init__(self, url: str, options: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.options = options
        self.lines: list[float] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        body = {
            "model": MODEL,
            "prompt": "Write a very long story about a lighthouse keeper.",
            "options": {**self.options, "num_predict": 100_000, "temperature": 1.0, "seed": 1},
        }
        with httpx.Client(timeout=None) as client:
            while not self.stopping.is_set():  # a story that ends early is simply asked again
                with client.stream("POST", self.url + "/api/generate", json=body) as response:
                    for _ in response.iter_lines():
                        self.lines.append(time.perf_counter())
                        if self.stopping.is_set():
                            break

    def worst_gap(self, start: float, end: float) -> float:
        times = [t for t in self.lines if start <= t <= end]
        return max((b - a for a, b in itertools.pairwise(times)), default=float("nan"))


def long_chat(messages: int, size: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)

    def text(i: int) -> str:
        words = [f"message {i}:"]
        while sum(len(w) + 1 for w in words) < size:
            words.append(rng.choice(WORDS))
        return " ".join(words)

    chat = [{"role": "system", "content": "You are a helpful assistant."}]
    chat += [{"role": ("user", "assistant")[i % 2], "content": text(i)} for i in range(messages - 1)]
    return chat


def post_chat(url: str, body: dict[str, Any], probe: Probe, stream: Stream) -> dict[str, Any]:
    """Posts the chat once; its times and the worst stall while it was being answered."""
    start = time.perf_counter()
    reply = httpx.post(url + "/api/chat", json=body, timeout=3600)
    end = time.perf_counter()
    reply.raise_for_status()
    done = reply.json()
    busy = sum(done.get(k, 0) for k in ("load_duration", "prompt_eval_duration", "eval_duration"))
    stall, probes = probe.worst(start, end)
    return {
        "request_s": round(end - start, 3),
        "prologue_s": round((done.get("total_duration", 0) - busy) / 1e9, 3),
        "prompt_eval_count": done.get("prompt_eval_count"),
        "prompt_cache_tokens": done.get("prompt_cache_tokens", 0),
        "worst_stall_ms": round(stall * 1000, 1),
        "probes": probes,
        "stream_worst_gap_ms": round(stream.worst_gap(start, end) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--size", type=int, default=2048, help="bytes per message")
    parser.add_argument("--num-ctx", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=0, help="num_thread (default: llamita's choice)")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds of the idle window")
    parser.add_argument("--log", type=Path, help="keep the server's output here")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a killed bench stops its server

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="loopstall-") as tmp:
        proc = start_server(port, Path(tmp) / "models", args.log or Path(tmp) / "serve.log")
        try:
            note("server up; loading the model")
            options: dict[str, Any] = {"num_ctx": args.num_ctx}
            if args.threads:
                options["num_thread"] = args.threads
            warm = {"model": MODEL, "prompt": "Hi", "stream": False, "options": {**options, "num_predict": 1}}
            httpx.post(url + "/api/generate", json=warm, timeout=120).raise_for_status()
            note("loaded; starting the stream")
            stream = Stream(url, options)
            probe = Probe(url)
            stream.start()
            while len(stream.lines) < 5:  # decoding has started
                time.sleep(0.05)
            probe.start()
            idle_start = time.perf_counter()
            time.sleep(args.idle)
            idle_end = time.perf_counter()
            idle_stall, idle_probes = probe.worst(idle_start, idle_end)
            report: dict[str, Any] = {
                "messages": args.messages,
                "num_ctx": args.num_ctx,
                "idle": {
                    "seconds": args.idle,
                    "worst_stall_ms": round(idle_stall * 1000, 1),
                    "probes": idle_probes,
                    "stream_worst_gap_ms": round(stream.worst_gap(idle_start, idle_end) * 1000, 1),
                },
            }

            chat = long_chat(args.messages, args.size)
            report["chat_bytes"] = sum(len(m["content"]) for m in chat)
            body = {"model": MODEL, "messages": chat, "stream": False}
            body["options"] = {**options, "num_predict": 1, "temperature": 0}
            # The first post evaluates the kept turns; the second finds them in the prefix cache,
            # so its time is mostly the prologue (render, tokenize, truncate).
            for name in ("first", "again"):
                note(f"posting the long chat ({name})")
                report[name] = post_chat(url, body, probe, stream)
            probe.stopping.set()
            stream.stopping.set()
            probe.join(timeout=30)
            stream.join(timeout=30)
            print(json.dumps(report, indent=1))
        finally:
            stop(proc)


if __name__ == "__main__":
    main()
