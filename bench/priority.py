"""A keystroke's FIM request while a long review prompt prefills: its TTFT against its idle TTFT.

One ``llamita serve`` (bench/servers.py) on one GGUF.  Three phases, each keystroke a cold FIM
prompt of its own (nothing cached), raw, so the server takes it as interactive:

1. **idle**: keystrokes one after another, nothing else running;
2. **typing**: a review prompt (``--review-tokens``, ``X-Llamita-Priority: batch``) starts while
   the editor is active, and keystrokes arrive while it prefills;
3. **after a pause**: no request for longer than the engine's interactive window, so the review
   prefills alone in long steps; one keystroke arrives during such a step, which is stopped
   for it (llama.cpp's abort callback) and evaluated again afterwards.

It prints the TTFT p50/max per phase and the ratio to idle (issue 13's target: ≤ 2), and how
long the review's prefill took alone and beside the keystrokes (what the priority costs it).

Usage: ``.venv/bin/python bench/priority.py [--gguf PATH] [--review-tokens 4000] [--keystrokes 4]``.
Not a test: the numbers depend on the machine; compare the phases of one run.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import exit_on_sigterm, llamita, running

from llamita.server.model.default_model import find_default_gguf

QUIET = 11.0  # seconds without a request: longer than the engine's interactive window (10 s)
NAMES = ["total", "items", "user", "config", "result", "value", "index", "buffer", "count", "path"]


def code(rng: random.Random, lines: int) -> str:
    """Plausible Python, different for every seed, so that no two prompts share a prefix."""
    out = []
    for i in range(lines):
        a, b = rng.choice(NAMES), rng.choice(NAMES)
        n = rng.randrange(1000)
        out.append(
            rng.choice(
                [
                    f"def {a}_{n}({b}):",
                    f"    {a} = {b} + {n}",
                    f"    if {a} > {n}:",
                    f"        return {b}[{i}]",
                    f"    for {a} in range({n}):",
                    f"    # {b} {n} {a}",
                ]
            )
        )
    return "\n".join(out) + "\n"


@dataclass
class Keystroke:
    ttft: float  # seconds from send to the first streamed text


def keystroke(url: str, model: str, rng: random.Random, lines: int) -> Keystroke:
    """A FIM request as an editor sends it: raw plain-text markers, a few greedy tokens."""
    prompt = f"<PRE>{code(rng, lines)}    {rng.choice(NAMES)} = <SUF>\n{code(rng, 4)}<MID>"
    body = {"model": model, "prompt": prompt, "raw": True, "stream": True}
    body["options"] = {"num_predict": 8, "temperature": 0, "seed": 1}
    sent = time.monotonic()
    first = None
    with httpx.stream("POST", url + "/api/generate", json=body, timeout=600, trust_env=False) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line and first is None and (json.loads(line).get("response") or json.loads(line).get("done")):
                first = time.monotonic() - sent
    return Keystroke(first if first is not None else float("nan"))


class Review:
    """A long chat prompt marked ``batch``, streamed in a thread; ``prefill`` is its TTFT."""

    def __init__(self, url: str, model: str, rng: random.Random, tokens: int) -> None:
        text = code(rng, tokens // 9)  # about 9 tokens a line with SmolLM2's tokenizer
        self.body = {
            "model": model,
            "messages": [{"role": "user", "content": "Review this code:\n" + text}],
            "stream": True,
            "options": {"num_predict": 4, "temperature": 0},
        }
        self.url = url
        self.prefill: float | None = None
        self.prompt_tokens = 0
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        headers = {"X-Llamita-Priority": "batch"}
        with httpx.stream(
            "POST", self.url + "/api/chat", json=self.body, headers=headers, timeout=3600, trust_env=False
        ) as r:
            for line in r.iter_lines():
                if not line:
                    continue
                chunk = json.loads(line)
                if self.prefill is None:
                    self.prefill = time.monotonic() - self.started
                if chunk.get("done"):
                    self.prompt_tokens = int(chunk.get("prompt_eval_count") or 0)

    @property
    def prefilling(self) -> bool:
        return self.prefill is None

    def wait(self) -> None:
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gguf", type=Path, default=None, help="default: the embedded SmolLM2")
    parser.add_argument("--review-tokens", type=int, default=4000)
    parser.add_argument("--fim-lines", type=int, default=16, help="lines before the cursor in a keystroke")
    parser.add_argument("--keystrokes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    exit_on_sigterm()
    gguf = args.gguf or find_default_gguf()
    rng = random.Random(args.seed)
    parameters = {"num_ctx": max(8192, args.review_tokens + 1024)}
    if args.threads:
        parameters["num_thread"] = args.threads
    rows: dict[str, list[float]] = {}
    reviews: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="llamita-priority-") as tmp:
        server = llamita("llamita", gguf, Path(tmp) / "models", parameters, {})
        with running(server, Path(tmp) / "serve.log") as target:
            url, model = target.split("@", 1)[1].split("#")
            keystroke(url, model, rng, args.fim_lines)  # warm-up
            rows["idle"] = [keystroke(url, model, rng, args.fim_lines).ttft for _ in range(args.keystrokes)]

            review = Review(url, model, rng, args.review_tokens)
            time.sleep(1.0)
            rows["typing"] = []
            while review.prefilling and len(rows["typing"]) < args.keystrokes:
                rows["typing"].append(keystroke(url, model, rng, args.fim_lines).ttft)
                time.sleep(0.5)
            review.wait()
            reviews["beside keystrokes"] = review.prefill or float("nan")

            rows["after a pause"] = []
            for _ in range(args.keystrokes):
                time.sleep(QUIET)
                review = Review(url, model, rng, args.review_tokens)
                time.sleep(2.0)  # inside a long step of the lone review
                if review.prefilling:
                    rows["after a pause"].append(keystroke(url, model, rng, args.fim_lines).ttft)
                review.wait()
            time.sleep(QUIET)
            alone = Review(url, model, rng, args.review_tokens)
            alone.wait()
            reviews["alone"] = alone.prefill or float("nan")
            reviews["tokens"] = alone.prompt_tokens

    idle = statistics.median(rows["idle"])
    print(
        f"\nkeystroke TTFT (cold {args.fim_lines}-line FIM prompt) beside a {reviews['tokens']}-token review"
    )
    print("| phase | n | TTFT p50 ms | TTFT max ms | max / idle p50 | target |")
    print("|---|---|---|---|---|---|")
    for name, values in rows.items():
        if not values:
            print(f"| {name} | 0 | - | - | - | |")
            continue
        target = "" if name == "idle" else "≤ 2"
        ratio = max(values) / idle
        p50 = statistics.median(values) * 1000
        print(f"| {name} | {len(values)} | {p50:.0f} | {max(values) * 1000:.0f} | {ratio:.2f} | {target} |")
    print(
        f"\nreview prefill: alone {reviews['alone']:.1f} s, "
        f"beside {len(rows['typing'])} keystrokes {reviews['beside keystrokes']:.1f} s"
    )


if __name__ == "__main__":
    main()
