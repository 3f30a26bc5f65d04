"""32 and 64 typing editors on one CUDA GPU: llamita against llama-server with 1 and with N slots.

Issue 13's "hold 64 editors on one box": the same coder GGUF, all layers on the GPU, one server
at a time, ``fim_load.py`` (shared, called by path) typing with the model's real FIM tokens.
llamita runs with ``OLLAMA_NUM_PARALLEL=N`` (and ``--session-header``); llama-server runs as
Ollama ships it (``-np 1``) and tuned (``-np N``, ``-c N×ctx``). The figures are TTFT p95 and
goodput (completed requests with TTFT under the SLO, per second) at each editor count.

Usage, on a machine with an NVIDIA GPU, a CUDA build of llama-cpp-python
(``CMAKE_ARGS=-DGGML_CUDA=on make install``) and a CUDA llama-server (``-DGGML_CUDA=on``)::

    .venv/bin/python bench/gpu.py --gguf qwen2.5-coder-7b-instruct-q4_k_m.gguf \\
        --llama-server PATH/llama-server [--out DIR]

It refuses to run without a GPU unless ``--allow-cpu`` (a smoke run: SmolLM2, 2 editors).
Not a test, and nothing in the tests depends on it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from servers import BUILD_HELP, Server, exit_on_sigterm, find_llama_server, llama_server, llamita
from sidebyside import Check, Phase, fim_load_path, load, report, run_server

OURS = "llamita"
QWEN_FIM = "<|fim_prefix|>,<|fim_suffix|>,<|fim_middle|>"
GPU_HELP = """\
GPU builds: llama-cpp-python with CUDA (CMAKE_ARGS=-DGGML_CUDA=on make install), and llama-server
with -DGGML_CUDA=on added to the cmake line below. --allow-cpu runs anyway (a smoke run, no figures)."""


def gpu_problems(llama_server_bin: Path | None) -> list[str]:
    """Why this box cannot give GPU figures: no NVIDIA GPU, or a server built without CUDA."""
    if shutil.which("nvidia-smi") is None:
        return ["nvidia-smi is not on PATH: no NVIDIA GPU or driver here"]
    problems = []
    smi = _run(["nvidia-smi", "-L"])
    if smi is None or "GPU" not in smi:
        problems.append("nvidia-smi -L lists no GPU")
    offload = _run([sys.executable, "-c", "import llama_cpp; print(llama_cpp.llama_supports_gpu_offload())"])
    if offload is None or "True" not in offload:
        problems.append("this venv's llama-cpp-python has no GPU offload (built without CUDA)")
    if llama_server_bin is not None:
        devices = _run([str(llama_server_bin), "--list-devices"])
        if devices is None or "CUDA" not in devices:
            problems.append(f"{llama_server_bin} lists no CUDA device (built without -DGGML_CUDA=on?)")
    return problems


def refuse_without_gpu(problems: list[str]) -> None:
    if problems:
        lines = "\n  ".join(problems)
        raise SystemExit(f"no GPU figures on this box:\n  {lines}\n{GPU_HELP}\n\n{BUILD_HELP}")


def _run(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout + done.stderr if done.returncode == 0 else None


def checks(editors: list[int], peers: list[str]) -> list[Check]:
    """Per editor count and peer: TTFT p95 no worse than the peer's, goodput at least the peer's."""
    out = []
    for n in editors:
        for peer in peers:
            out.append(Check("typing", n, "ttft95", OURS, peer, "<=", 1.0))
            out.append(Check("typing", n, "good/s", OURS, peer, ">=", 1.0))
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=GPU_HELP + "\n\n" + BUILD_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--gguf",
        type=Path,
        required=True,
        help="a 1.5B-7B coder GGUF with FIM tokens, e.g. qwen2.5-coder-1.5b-instruct-q4_k_m.gguf "
        "or qwen2.5-coder-7b-instruct-q4_k_m.gguf",
    )
    p.add_argument("--fim-markers", default=QWEN_FIM, help=f"the model's FIM tokens ({QWEN_FIM})")
    p.add_argument("--llama-server", help="a CUDA llama-server binary (else $LLAMA_SERVER or PATH)")
    p.add_argument("--fim-load", help="fim_load.py (default: ../shared/bench/fim_load.py)")
    p.add_argument(
        "--out", type=Path, help="folder for the JSON files, logs and report.md (default: a temp dir)"
    )
    p.add_argument("--editors", default="32,64", help="typing editor counts (32,64)")
    p.add_argument(
        "--parallel", type=int, default=32, help="llamita's OLLAMA_NUM_PARALLEL and the tuned -np (32)"
    )
    p.add_argument("--servers", help="which to run, in order (default: llamita,ls-np1,ls-npN)")
    p.add_argument("--duration", type=float, default=60.0, help="typing seconds per editor count (60)")
    p.add_argument("--cps", type=float, default=6.0, help="chars/s per editor (6)")
    p.add_argument("--prefix-lines", type=int, default=64, help="(64)")
    p.add_argument("--suffix-lines", type=int, default=16, help="(16)")
    p.add_argument("--num-predict", type=int, default=32, help="(32)")
    p.add_argument("--slo-ms", type=float, default=300.0, help="goodput TTFT bound (300)")
    p.add_argument("--ctx", type=int, default=4096, help="context per slot / per sequence (4096)")
    p.add_argument(
        "--ngl", type=int, default=999, help="layers on the GPU: llama-server -ngl, llamita num_gpu"
    )
    p.add_argument("--threads", type=int, help="CPU threads for both (default: each server's own)")
    p.add_argument(
        "--models", type=Path, help="llamita's OLLAMA_MODELS (default: a temp store, removed after)"
    )
    p.add_argument("--allow-cpu", action="store_true", help="run without a GPU (smoke only)")
    a = p.parse_args(argv)
    if not a.gguf.is_file():
        p.error(f"no GGUF at {a.gguf}")
    a.editor_counts = [int(n) for n in a.editors.split(",") if n.strip()]
    tuned = f"ls-np{a.parallel}"
    known = [OURS, "ls-np1", tuned]
    a.server_names = [s.strip() for s in (a.servers or ",".join(known)).split(",") if s.strip()]
    if not a.server_names or set(a.server_names) - set(known) or a.parallel < 1:
        p.error(f"--servers: a list of {', '.join(known)}")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    exit_on_sigterm()
    if not a.allow_cpu:
        refuse_without_gpu(gpu_problems(None))  # first: the plainest message on a box without a GPU
    fim_load = fim_load_path(a.fim_load)
    peers = [s for s in a.server_names if s != OURS]
    binary = find_llama_server(a.llama_server) if peers else None
    problems = gpu_problems(binary)
    if not a.allow_cpu:
        refuse_without_gpu(problems)
    for problem in problems:
        print(f"# warning (--allow-cpu): {problem}", file=sys.stderr)
    out = a.out or Path(tempfile.mkdtemp(prefix="gpu-"))
    out.mkdir(parents=True, exist_ok=True)
    models = a.models or Path(tempfile.mkdtemp(prefix="llamita-models-"))
    args = ["--mode", "typing", "--editors", a.editors, "--cps", str(a.cps), "--duration", str(a.duration)]
    args += ["--layout", "stable", "--prefix-lines", str(a.prefix_lines)]
    args += ["--suffix-lines", str(a.suffix_lines), "--fim-markers", a.fim_markers]
    args += ["--num-predict", str(a.num_predict), "--slo-ms", str(a.slo_ms), "--seed", "1"]
    phase = Phase("typing", tuple(args), session_header=True)
    parameters = {"num_gpu": a.ngl, "num_ctx": a.ctx} | ({"num_thread": a.threads} if a.threads else {})
    env = {"OLLAMA_NUM_PARALLEL": str(a.parallel)}

    def peer(name: str, np: int) -> Callable[[], Server]:
        return lambda: llama_server(
            name, binary, a.gguf, ctx=a.ctx, parallel=np, threads=a.threads, ngl=a.ngl
        )

    makers = {
        OURS: lambda: llamita(OURS, a.gguf, models, parameters, env),
        "ls-np1": peer("ls-np1", 1),
        f"ls-np{a.parallel}": peer(f"ls-np{a.parallel}", a.parallel),
    }
    written: list[Path] = []
    try:
        for name in a.server_names:
            written += run_server(makers[name], [phase], fim_load, out)
    finally:
        if a.models is None:
            shutil.rmtree(models, ignore_errors=True)
    where = "CPU smoke run, not GPU figures" if problems else "GPU"
    title = f"gpu: {a.gguf.name}, {where}, one server at a time"
    text = report(load(written), a.server_names, checks(a.editor_counts, peers), title)
    (out / "report.md").write_text(text)
    print(text)
    print(f"JSON, logs and report.md in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
