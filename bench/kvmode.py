"""KV layout and cache type: the same 8-stream workload on the Engine, side by side in one run.

Each configuration loads the GGUF in a fresh engine (``num_parallel`` = streams, so every
stream runs at once) and runs the same workload: ``--streams`` distinct prompts submitted
together, each generating ``--tokens`` tokens greedily with EOS ignored.  Printed per
configuration: aggregate decode tok/s (all generated tokens over the time from the last first
token to the last Done, when every stream is decoding), the prefill tok/s of the burst, and
each figure's ratio to the first row (unified f16, today's default).

Unified KV is one pool of cells that all sequences share (one micro-batch per step, prefixes
shared without copies); per-sequence KV (``LLAMITA_KV_UNIFIED=0``) gives each sequence its own
``num_ctx`` cells, and llama.cpp then splits a batch into micro-batches of consecutive
sequences with equal token counts.  q8_0 needs flash attention (llama.cpp turns it on).

Usage: ``.venv/bin/python bench/kvmode.py [--gguf PATH] [--streams 8] [--tokens 64]
[--threads N] [--flash-attn auto|on|off] [--rounds 2]``.
Not a test: the figures depend on the machine; compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from llamita.server.engine import Done, Engine, LoadOptions, SamplingParams
from llamita.server.model.default_model import find_default_gguf
from llamita.server.runtime.knobs import Knobs, context_options

TOPICS = ("a lighthouse", "a robot", "the sea", "a city", "a forest", "a train", "a cat", "a storm")
PROMPT = "<|im_start|>user\nWrite a long story about {} (part {}).<|im_end|>\n<|im_start|>assistant\n"


@dataclass
class Figures:
    decode_tps: float
    prefill_tps: float
    generated: int


async def burst(engine: Engine, streams: int, tokens: int, round_: int) -> Figures:
    """``streams`` requests at once.  Decode rate: tokens generated while every stream was
    decoding (from the last first token to the first Done) over that time; when the streams
    never all overlap (too few ``--tokens``), all tokens after the first over the whole burst."""
    params = SamplingParams(temperature=0, num_predict=tokens, ignore_eos=True)

    async def one(i: int) -> tuple[Done, list[float]]:
        prompt = engine.tokenize(PROMPT.format(TOPICS[i % len(TOPICS)], f"{round_}.{i}"))
        times: list[float] = []
        async for event in engine.generate(prompt, params):
            times.append(time.perf_counter())
            if isinstance(event, Done):
                return event, times
        raise RuntimeError("no Done event")

    start = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(streams)))
    all_decoding = max(times[0] for _, times in results)
    first_done = min(times[-1] for _, times in results)
    in_window = sum(sum(1 for t in times[:-1] if all_decoding < t <= first_done) for _, times in results)
    prompt_tokens = sum(done.prompt_eval_count for done, _ in results)
    if in_window == 0:  # too few tokens for the streams to overlap: all decoding, end to end
        all_decoding = min(times[0] for _, times in results)
        first_done = max(times[-1] for _, times in results)
        in_window = sum(len(times) - 2 for _, times in results)
    return Figures(
        decode_tps=max(in_window, 0) / max(first_done - all_decoding, 1e-9),
        prefill_tps=prompt_tokens / max(all_decoding - start, 1e-9),
        generated=sum(done.eval_count for done, _ in results),
    )


async def measure(gguf: Path, knobs: Knobs, args: argparse.Namespace) -> Figures:
    options = context_options(
        knobs,
        num_ctx=args.num_ctx,
        num_batch=512,
        n_seq_max=2 * args.streams,
        num_thread=args.threads,
    )
    engine = Engine(gguf, LoadOptions(), options)
    try:
        await burst(engine, args.streams, 4, -1)  # warm-up: graphs, caches, the cost model
        runs = [await burst(engine, args.streams, args.tokens, r) for r in range(args.rounds)]
        return Figures(
            decode_tps=max(r.decode_tps for r in runs),
            prefill_tps=max(r.prefill_tps for r in runs),
            generated=runs[-1].generated,
        )
    finally:
        engine.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gguf", type=Path, default=find_default_gguf())
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=64, help="tokens each stream generates")
    parser.add_argument("--num-ctx", type=int, default=1024, help="context of each stream")
    parser.add_argument("--threads", type=int, default=0, help="0: physical cores")
    parser.add_argument("--flash-attn", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--rounds", type=int, default=2, help="measured bursts per configuration (best kept)")
    args = parser.parse_args()
    flash = {"auto": None, "on": True, "off": False}[args.flash_attn]
    configs = [
        ("unified", "f16"),
        ("per-seq", "f16"),
        ("unified", "q8_0"),
        ("per-seq", "q8_0"),
    ]
    print(
        f"model {args.gguf.name}, {args.streams} streams x {args.tokens} tokens, num_ctx {args.num_ctx}, "
        f"flash attention {args.flash_attn}, best of {args.rounds}"
    )
    print(f"{'layout':8} {'kv':5} {'decode tok/s':>13} {'ratio':>6} {'prefill tok/s':>14} {'ratio':>6}")
    base: Figures | None = None
    for layout, kv in configs:
        if kv != "f16" and flash is False:
            print(f"{layout:8} {kv:5} skipped: a quantized cache needs flash attention")
            continue
        knobs = Knobs(parallel=args.streams, flash_attn=flash, cache_type=kv, kv_unified=layout == "unified")
        figures = asyncio.run(measure(args.gguf, knobs, args))
        base = base or figures
        base.decode_tps = base.decode_tps or 1e-9
        base.prefill_tps = base.prefill_tps or 1e-9
        print(
            f"{layout:8} {kv:5} {figures.decode_tps:13.1f} {figures.decode_tps / base.decode_tps:6.2f} "
            f"{figures.prefill_tps:14.1f} {figures.prefill_tps / base.prefill_tps:6.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
