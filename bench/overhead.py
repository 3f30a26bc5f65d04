"""Per-step engine overhead against a bare ``llama_decode`` loop, side by side in one run.

Target (issue 13): llamita's decode step costs at most 5 % more than a bare loop at 8 and 32
sequences.  Both run on the same GGUF with the same context shape (unified KV, n_ctx, n_batch,
n_seq_max, threads):

- bare: llama-cpp-python's low-level API only: N short prompts prefilled (as few batches as
  n_batch allows), then K steps that each put one token per sequence into a ``llama_batch``,
  ``llama_decode`` and greedy-sample every sequence (``llama_sampler_sample``, greedy);
- engine: llamita's ``Engine`` with N concurrent greedy requests (``ignore_eos``, aborted after
  K steps); ``Context.decode`` is wrapped to stamp each call, and a step is counted when its
  batch is one token from each of the N sequences (all are decoding).

Both figures are the mean time from one decode step's start to the next one's: everything a
step costs (batch fill, decode, sampling, and for the engine its bookkeeping, text and events).
The part outside ``llama_decode`` is printed too: on a shared machine the decode is what
other processes slow down, and the difference of those parts is the engine's own cost.
A second loaded model that is idle must not slow the busy one: one greedy request's time per
token alone, beside an idle engine that handed its OpenMP team back, and beside one that keeps it
(``server/engine/openmp.py`` says why that costs).
The grammar cost is the same figure for one request with ``format: "json"`` against none, with
the grammar lazy (checked on the sampled token) and eager (first in the chain, every token).

Every measurement runs in a fresh process (``spawn``), with its decodes on the thread the real
thing uses: the bare loop on the main thread (as llama-server's loop), the engine on its own thread.
They must not share a process: libgomp (llama.cpp's OpenMP) keeps a docked team for every thread
that ever ran a parallel region, and once it manages more threads than there are CPUs it spins
only 100 times at each barrier before sleeping on a futex.  A bare loop that ran on the main
thread before the engine thus made every later decode in that process wait on futexes (12 ms
instead of 6 ms for one SmolLM2 token on 2 cores), which earlier versions of this script counted
as the engine's overhead.

On this 2-core VM one run of either side can be 20 % slower than the next for reasons of neither
(other tenants): each side runs ``--rounds`` times, alternated, and the best of each side is
printed, with the median of the rounds' paired ratios.

Usage: ``.venv/bin/python bench/overhead.py [--gguf PATH] [--threads N] [--steps K] [--seqs 8 32]
[--rounds R]``; a smoke run: ``--steps 8 --seqs 8 --rounds 1``.
Not a test: the numbers depend on the machine; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import ctypes
import itertools
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, TypeVar

import llama_cpp as ll

from llamita.server.engine import ContextOptions, Done, Engine, LoadOptions, SamplingParams, format_grammar
from llamita.server.engine.llama import init_backend
from llamita.server.engine.sampling import Sampler
from llamita.server.model.default_model import find_default_gguf

T = TypeVar("T")
CTX_SEQ = 512  # cells per sequence: a short prompt plus K tokens
N_BATCH = 512


def prompt_text(i: int) -> str:
    """Distinct from the first token on, so no sequence shares another's prefix."""
    return f"{i} apples and {i + 1} pears: count every fruit, then tell a story about them."


class Step(NamedTuple):
    """Mean seconds per step, and of those the part outside ``llama_decode`` (batch, sampling,
    bookkeeping): less noisy on a shared machine, where the decode is what others slow down."""

    total: float
    outside: float


def mean_step(stamps: list[tuple[float, float]]) -> Step:
    """From (decode start, decode end) of consecutive steps: one step is start to next start."""
    n = len(stamps) - 1
    outside = sum(b[0] - a[1] for a, b in itertools.pairwise(stamps))
    return Step((stamps[-1][0] - stamps[0][0]) / n, outside / n)


# ---- bare loop --------------------------------------------------------------------------------
# Both sides use the KV layout the server would (a pool per sequence on a CPU-only build).
LAYOUT = {"unified": True}


def bare_steps(gguf: Path, n: int, steps: int, threads: int) -> Step:
    """Mean seconds per decode step of a bare low-level loop over ``n`` sequences."""
    init_backend()  # llamita's: llama.cpp's log goes to logging, as in the engine
    mparams = ll.llama_model_default_params()
    mparams.n_gpu_layers = -1 if ll.llama_supports_gpu_offload() else 0
    model = ll.llama_model_load_from_file(str(gguf).encode(), mparams)
    if not model:
        raise RuntimeError(f"cannot load {gguf}")
    vocab = ll.llama_model_get_vocab(model)
    cparams = ll.llama_context_default_params()
    cparams.n_ctx = n * CTX_SEQ
    cparams.n_batch = N_BATCH
    cparams.n_ubatch = min(N_BATCH, max(512, n))  # as llamita's Context
    cparams.n_seq_max = n
    cparams.kv_unified = LAYOUT["unified"]
    cparams.n_threads = cparams.n_threads_batch = threads
    ctx = ll.llama_init_from_model(model, cparams)
    batch = ll.llama_batch_init(N_BATCH, 0, n)
    greedy = ll.llama_sampler_init_greedy()
    try:
        prompts = [tokenize(vocab, prompt_text(i)) for i in range(n)]
        last = [prefill(ctx, batch, greedy, prompts, group) for group in groups(prompts)]
        last = [token for tokens in last for token in tokens]
        pos = [len(t) for t in prompts]
        stamps = []
        for _ in range(steps):
            batch.n_tokens = 0
            for seq in range(n):
                put(batch, last[seq], pos[seq], seq, True)
                pos[seq] += 1
            start = time.perf_counter()
            if ll.llama_decode(ctx, batch) != 0:
                raise RuntimeError("decode failed")
            stamps.append((start, time.perf_counter()))
            last = [ll.llama_sampler_sample(greedy, ctx, i) for i in range(n)]
        stamps.append((time.perf_counter(), 0.0))  # the start of the step after the last
        return mean_step(stamps)
    finally:
        ll.llama_sampler_free(greedy)
        ll.llama_batch_free(batch)
        ll.llama_free(ctx)
        ll.llama_model_free(model)


def groups(prompts: list[list[int]]) -> list[range]:
    """Consecutive sequences whose prompts fit in one batch together."""
    out, start, size = [], 0, 0
    for seq, tokens in enumerate(prompts):
        if size + len(tokens) > N_BATCH:
            out.append(range(start, seq))
            start, size = seq, 0
        size += len(tokens)
    return [*out, range(start, len(prompts))]


def prefill(
    ctx: ctypes.c_void_p,
    batch: ll.llama_batch,
    greedy: ctypes.c_void_p,
    prompts: list[list[int]],
    seqs: range,
) -> list[int]:
    """Evaluate the prompts of ``seqs`` in one decode; each one's first generated token."""
    batch.n_tokens = 0
    last_index = []
    for seq in seqs:
        tokens = prompts[seq]
        for pos, token in enumerate(tokens):
            put(batch, token, pos, seq, pos == len(tokens) - 1)
        last_index.append(batch.n_tokens - 1)
    if ll.llama_decode(ctx, batch) != 0:
        raise RuntimeError("prefill failed")
    return [ll.llama_sampler_sample(greedy, ctx, i) for i in last_index]


def tokenize(vocab: ctypes.c_void_p, text: str) -> list[int]:
    data = text.encode()
    buf = (ll.llama_token * (len(data) + 16))()
    count = ll.llama_tokenize(vocab, data, len(data), buf, len(buf), True, True)
    return list(buf[:count])


def put(batch: ll.llama_batch, token: int, pos: int, seq: int, logits: bool) -> None:
    i = batch.n_tokens
    batch.token[i] = token
    batch.pos[i] = pos
    batch.n_seq_id[i] = 1
    batch.seq_id[i][0] = seq
    batch.logits[i] = logits
    batch.n_tokens = i + 1


# ---- llamita's engine ---------------------------------------------------------------------------
class Stamps:
    """Stamps the start of every decode whose batch is ``n`` tokens that all ask for logits: one
    of each sequence, all decoding (a prompt part of two tokens or more has an entry without
    logits).  The check is two C-speed reads, next to nothing beside a step.

    Another kind of step ends the current run; ``on_run(k)`` is called (engine thread) when a
    run first holds ``k`` stamps.
    """

    def __init__(self, engine: Engine, n: int, k: int = 0, on_run: Callable[[], None] | None = None) -> None:
        self.runs: list[list[tuple[float, float]]] = [[]]
        ctx = engine.ctx
        decode: Callable[[], int] = ctx.decode
        raw = ctx.batch.raw
        every = b"\x01" * n

        def stamped(preempt: Callable[[], bool] | None = None) -> int:
            run = self.runs[-1]
            if not (raw.n_tokens == n and ctypes.string_at(raw.logits, n) == every):
                if run:
                    self.runs.append([])
                return decode(preempt)
            start = time.perf_counter()
            rc = decode(preempt)
            run.append((start, time.perf_counter()))
            if len(run) == k and on_run is not None:
                on_run()
            return rc

        ctx.decode = stamped  # type: ignore[method-assign]

    def step(self, k: int = 0) -> Step:
        """Mean seconds per step over the longest run (its first ``k`` stamps when ``k``)."""
        run = max(self.runs, key=len)
        run = run[:k] if k else run
        if len(run) < 2:
            raise RuntimeError("no run of all-decoding steps was seen")
        return mean_step(run)


async def finish(engine: Engine, prompt: list[int], params: SamplingParams) -> Done:
    async for event in engine.generate(prompt, params):
        if isinstance(event, Done):
            if event.error:
                raise RuntimeError(event.error)
            return event
    raise RuntimeError("no Done event")


def new_engine(gguf: Path, n: int, threads: int, idle_release: float = 0.25) -> Engine:
    """The engine as the bare loop runs: prompts admitted as fast as n_batch allows.

    Its usual pacing (short prefill steps while others decode, for their latency) would admit
    the N prompts over many steps; the first ones would then decode with longer contexts than
    the bare loop's, and a step over more KV costs more.  A long ``step_target`` turns that off.
    """
    engine = Engine(
        gguf,
        LoadOptions(n_gpu_layers=-1 if ll.llama_supports_gpu_offload() else 0),
        ContextOptions(
            n_ctx=n * CTX_SEQ,
            n_ctx_seq=CTX_SEQ,
            n_batch=N_BATCH,
            n_seq_max=n,
            n_threads=threads,
            kv_unified=LAYOUT["unified"],
        ),
        step_target=3600.0,
        idle_release=idle_release,
    )
    # Warm-up, long enough (16 tokens or more) for the engine to learn its prompt cost.
    asyncio.run(
        finish(engine, engine.tokenize(prompt_text(999)), SamplingParams(temperature=0, num_predict=2))
    )
    return engine


def engine_steps(gguf: Path, n: int, steps: int, threads: int) -> Step:
    """Mean seconds per step of the engine over ``steps`` steps in which all ``n`` requests decode.

    The requests are admitted and prefilled as the engine paces it, so some start decoding
    before others: they are asked for as many tokens as fit, and aborted once ``steps`` steps
    with all of them decoding were seen.
    """
    engine = new_engine(gguf, n, threads)
    try:
        prompts = [engine.tokenize(prompt_text(i)) for i in range(n)]
        room = CTX_SEQ - max(len(p) for p in prompts) - 1
        if room < steps + 1:
            raise SystemExit(f"--steps must be below {room} ({CTX_SEQ} cells per sequence)")
        greedy = SamplingParams(temperature=0, num_predict=room, ignore_eos=True, shift=False)

        async def measure() -> Stamps:
            loop, enough = asyncio.get_running_loop(), asyncio.Event()
            stamps = Stamps(engine, n, steps + 1, lambda: loop.call_soon_threadsafe(enough.set))
            tasks = [asyncio.ensure_future(finish(engine, p, greedy)) for p in prompts]
            waiter = asyncio.ensure_future(enough.wait())
            await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in [waiter, *tasks]:
                task.cancel()
            for result in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(result, Exception) and not isinstance(result, asyncio.CancelledError):
                    raise result
            return stamps

        return asyncio.run(measure()).step(steps + 1)
    finally:
        engine.close()


def grammar_cost(gguf: Path, steps: int, threads: int) -> dict[str, Step]:
    """Seconds per token of one greedy request: no format, format json lazy, and eager."""
    engine = new_engine(gguf, 1, threads)
    question = "<|im_start|>user\nDescribe a person as JSON.<|im_end|>\n<|im_start|>assistant\n"
    prompt = engine.tokenize(question)
    json_grammar = format_grammar("json")
    runs = (("none", None, True), ("json lazy", json_grammar, True), ("json eager", json_grammar, False))
    out = {}
    try:
        stamps = Stamps(engine, 1)
        for name, grammar, lazy in runs:
            stamps.runs = [[]]
            Sampler.lazy_grammar = lazy
            params = SamplingParams(temperature=0, num_predict=steps, grammar=grammar)
            asyncio.run(finish(engine, prompt, params))
            out[name] = stamps.step()
    finally:
        Sampler.lazy_grammar = True
        engine.close()
    return out


def beside_idle_model(gguf: Path, steps: int, threads: int, second: str) -> Step:
    """Seconds per token of one greedy request while a second model is loaded and idle.

    ``second``: "none" (no second model), "released" (it decoded once, then handed its OpenMP
    team back, as every idle engine does) or "held" (it keeps its team, as before that).
    """
    busy = new_engine(gguf, 1, threads)
    idle = None
    try:
        if second != "none":
            idle = new_engine(gguf, 1, threads, idle_release=0.05 if second == "released" else 1e9)
            time.sleep(1.0)  # the idle engine's release, and the busy one's after its warm-up
        stamps = Stamps(busy, 1)
        params = SamplingParams(temperature=0, num_predict=steps, ignore_eos=True)
        asyncio.run(finish(busy, busy.tokenize(prompt_text(7)), params))
        return stamps.step()
    finally:
        busy.close()
        if idle is not None:
            idle.close()


def isolated(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` in a fresh process: no OpenMP team of an earlier measurement slows it."""
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as process:
        return process.submit(fn, *args).result()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gguf", type=Path, default=find_default_gguf())
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--steps", type=int, default=64, help="decode steps per sequence (K)")
    parser.add_argument("--seqs", type=int, nargs="+", default=[8, 32], help="sequence counts (N)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated runs of each; the best counts")
    parser.add_argument(
        "--kv",
        choices=["unified", "per-seq"],
        default=None,
        help="KV layout (default: the server's for this build)",
    )
    args = parser.parse_args()
    gpu = ll.llama_supports_gpu_offload()
    LAYOUT["unified"] = gpu if args.kv is None else args.kv == "unified"
    print(
        f"model {args.gguf.name}, {args.threads} threads, {'GPU' if gpu else 'CPU'}, "
        f"{'unified' if LAYOUT['unified'] else 'per-sequence'} KV, {args.steps} steps, best of {args.rounds}"
    )
    for n in args.seqs:
        # Alternated rounds, the best of each side: what another process steals is not the engine's.
        bare, ours = [], []
        for _ in range(args.rounds):
            bare.append(isolated(bare_steps, args.gguf, n, args.steps, args.threads))
            ours.append(isolated(engine_steps, args.gguf, n, args.steps, args.threads))
        b, e = min(bare), min(ours)
        b_out, e_out = min(s.outside for s in bare), min(s.outside for s in ours)
        paired = sorted((o.total / p.total - 1) * 100 for p, o in zip(bare, ours, strict=True))
        print(
            f"N={n:3d}  bare {b.total * 1e3:8.2f} ms/step   engine {e.total * 1e3:8.2f} ms/step   "
            f"overhead {(e.total / b.total - 1) * 100:+6.1f} %  (target <= +5 %)\n"
            f"       each round, engine vs the bare run before it: median {statistics.median(paired):+.1f} % "
            f"of [{', '.join(f'{r:+.1f}' for r in paired)}]\n"
            f"       outside llama_decode: bare {b_out * 1e3:.2f} ms, engine {e_out * 1e3:.2f} ms: "
            f"the engine's own share {(e_out - b_out) / b.total * 100:+.1f} % of a bare step"
        )
    cost = isolated(grammar_cost, args.gguf, args.steps, args.threads)
    base = cost["none"]
    for name, step in cost.items():
        print(
            f"one request, format {name:10s} {step.total * 1e3:8.2f} ms/token "
            f"({(step.total / base.total - 1) * 100:+6.1f} %), "
            f"outside llama_decode {step.outside * 1e3:.2f} ms"
        )
    seconds = {
        second: min(
            isolated(beside_idle_model, args.gguf, args.steps, args.threads, second)
            for _ in range(args.rounds)
        )
        for second in ("none", "released", "held")
    }
    alone = seconds["none"]
    for second, step in seconds.items():
        print(
            f"one request, second model {second:8s} {step.total * 1e3:8.2f} ms/token "
            f"({(step.total / alone.total - 1) * 100:+6.1f} %)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
