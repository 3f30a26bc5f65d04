"""Long-prompt prefill: llamita's engine over bare llama-cpp-python, side by side in one run.

Both evaluate the same prompt tokens of one GGUF with the same threads and n_batch; the figure
to compare is the ratio of prompt tokens/s.  The engine is also measured while another request
is generating (its prefill then shares every step with that request's decode).

Usage: ``.venv/bin/python bench/prefill.py [--gguf PATH] [--tokens N] [--threads N]``.
Not a test: the numbers depend on the machine; the ratio is what to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

from llamita.server.engine import ContextOptions, Done, Engine, LoadOptions, SamplingParams
from llamita.server.model.default_model import find_default_gguf

LINE = "def handler_{i}(request):\n    return respond(request, status={i})\n\n"


def prompt_text(n_lines: int) -> str:
    return "".join(LINE.format(i=i) for i in range(n_lines))


def bare_prefill(gguf: Path, text: str, threads: int, n_ctx: int) -> tuple[int, float]:
    """Bare llama-cpp-python ``Llama.eval`` (llama_decode in n_batch chunks): tokens, tokens/s."""
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=str(gguf),
        n_ctx=n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        n_batch=512,
        verbose=False,
    )
    try:
        tokens = llm.tokenize(text.encode(), add_bos=True, special=True)
        start = time.perf_counter()
        llm.eval(tokens)
        return len(tokens), len(tokens) / (time.perf_counter() - start)
    finally:
        llm.close()


async def one(engine: Engine, prompt: list[int], n: int) -> Done:
    params = SamplingParams(temperature=0, num_predict=n, ignore_eos=True)
    async for event in engine.generate(prompt, params):
        if isinstance(event, Done):
            return event
    raise RuntimeError("no Done event")


async def engine_prefill(gguf: Path, text: str, threads: int, n_ctx: int) -> dict[str, float]:
    engine = Engine(
        gguf,
        LoadOptions(),
        ContextOptions(n_ctx=2 * n_ctx, n_ctx_seq=n_ctx, n_batch=512, n_seq_max=2, n_threads=threads),
    )
    try:
        await one(engine, engine.tokenize("Hello"), 2)  # warm-up
        prompt = engine.tokenize(text)
        alone = await one(engine, prompt, 1)
        # The same prompt (changed at the start, so no prefix is reused) beside a generating request.
        other = engine.tokenize("<|im_start|>user\nCount to a thousand.<|im_end|>\n<|im_start|>assistant\n")
        background = asyncio.ensure_future(one(engine, other, 100_000))
        await asyncio.sleep(0)
        shared = await one(engine, engine.tokenize("# v2\n" + text), 1)
        background.cancel()
        return {
            "tokens": float(alone.prompt_eval_count),
            "alone_tps": alone.prompt_eval_count / (alone.prompt_eval_duration / 1e9),
            "beside_decode_tps": shared.prompt_eval_count / (shared.prompt_eval_duration / 1e9),
        }
    finally:
        engine.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gguf", type=Path, default=find_default_gguf())
    parser.add_argument("--lines", type=int, default=80, help="prompt size in code lines (~19 tokens each)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    text = prompt_text(args.lines)
    n_ctx = 4096
    n, bare = bare_prefill(args.gguf, text, args.threads, n_ctx)
    ours = asyncio.run(engine_prefill(args.gguf, text, args.threads, n_ctx))
    print(f"model {args.gguf.name}, {args.threads} threads, prompt {n} tokens (engine: {ours['tokens']:.0f})")
    print(f"bare llama-cpp-python prefill      {bare:8.1f} tok/s")
    alone = ours["alone_tps"]
    print(f"llamita engine, alone              {alone:8.1f} tok/s   ratio {alone / bare:.2f}")
    print(
        f"llamita engine, beside a decode    {ours['beside_decode_tps']:8.1f} tok/s   "
        f"ratio {ours['beside_decode_tps'] / bare:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
