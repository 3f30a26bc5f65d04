"""Run ``fim_load.py`` phases against one server at a time and print the figures side by side.

The load generator is the shared ``fim_load.py`` (never copied here), called as a subprocess
with ``--json``; its per-phase summaries are read back and turned into two markdown tables:
every server's rows, then the issue's figures with ratio, target and pass columns.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from servers import Server, running

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FIM_LOAD = ROOT.parent / "shared" / "bench" / "fim_load.py"  # ../shared/bench/ from the repo root


@dataclass(frozen=True)
class Phase:
    """One fim_load invocation: a label for the tables and its workload arguments."""

    label: str
    args: tuple[str, ...]
    session_header: bool = False  # llamita's per-editor KV affinity (X-Llamita-Session)


# Summaries keyed by (server, phase label, editors).
Summaries = dict[tuple[str, str, int], dict]


def fim_load_path(given: str | None) -> Path:
    path = Path(given) if given else DEFAULT_FIM_LOAD
    if not path.is_file():
        raise SystemExit(f"fim_load.py not found at {path}; pass --fim-load PATH")
    return path


def fim_load_argv(script: Path, target: str, phase: Phase, json_path: Path, *, ollama: bool) -> list[str]:
    """This interpreter (it has httpx) running fim_load.py on one target with ``--json``."""
    argv = [sys.executable, str(script), "--compare", target, *phase.args, "--json", str(json_path)]
    if phase.session_header and ollama:
        argv.append("--session-header")
    return argv


def _flag(args: tuple[str, ...], flag: str, default: str) -> str:
    return args[args.index(flag) + 1] if flag in args else default


def phase_timeout(phase: Phase) -> float:
    """A bound for the subprocess: fim_load bounds each editor count by duration + grace + 30 s."""
    a = phase.args
    counts = len(_flag(a, "--editors", "4").split(","))
    each = float(_flag(a, "--duration", "30")) + float(_flag(a, "--grace", "10"))
    return 300 + counts * (each + 30 + float(_flag(a, "--cooldown", "2")))


def run_server(make: Callable[[], Server], phases: list[Phase], fim_load: Path, out: Path) -> list[Path]:
    """Start one server, run every phase against it, stop it; returns the JSON files written."""
    server = make()
    written = []
    with running(server, out / f"{server.name}.log") as target:
        for phase in phases:
            path = out / f"{server.name}-{phase.label}.json"
            argv = fim_load_argv(fim_load, target, phase, path, ollama=server.kind == "ollama")
            print("# " + " ".join(argv), file=sys.stderr, flush=True)
            try:
                subprocess.run(argv, check=True, timeout=phase_timeout(phase))
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
                # One failed phase (a warm-up over fim_load's 120 s on a busy box) must not lose the rest.
                print(f"# {server.name} {phase.label} failed ({e}); its figures are missing", file=sys.stderr)
                continue
            written.append(path)
    return written


def load(paths: list[Path]) -> Summaries:
    """Read back fim_load's JSON: phase label from the file name ``SERVER-LABEL.json``."""
    out: Summaries = {}
    for path in paths:
        data = json.loads(path.read_text())
        for ph in data["phases"]:
            label = path.stem[len(ph["backend"]) + 1 :]
            out[(ph["backend"], label, int(ph["editors"]))] = ph["summary"]
    return out


def num(x: float | None, nd: int = 0) -> str:
    if x is None:
        return "-"
    return "∞" if math.isinf(x) else f"{x:.{nd}f}"


def detail_table(summaries: Summaries, servers: list[str]) -> str:
    """One row per server, phase and editor count, in the order the servers ran."""
    head = (
        "| server | phase | editors | sent | first token | done | cancelled | TTFT p50/p95 ms "
        "| T_line p50/p95 ms | tok/s | good/s | eval/req | cache % |"
    )
    rows = [head, "|" + "---|" * 13]
    keys = sorted(summaries, key=lambda k: (servers.index(k[0]) if k[0] in servers else 99, k[1], k[2]))
    for name, label, editors in keys:
        s = summaries[(name, label, editors)]
        t, tl = s["ttft_ms"], s["tline_ms"]
        cache = None if s.get("cache_frac") is None else 100 * s["cache_frac"]
        rows.append(
            f"| {name} | {label} | {editors} | {s['sent']} | {s['answered']} | {s['completed']} "
            f"| {s['cancelled']} | {num(t['p50'])} / {num(t['p95'])} | {num(tl['p50'])} / {num(tl['p95'])} "
            f"| {num(s['tok_s'], 1)} | {num(s['goodput_per_s'], 2)} | {num(s['prompt_eval_per_req'])} "
            f"| {num(cache)} |"
        )
    return "\n".join(rows)


# Figures: what a summary field is, and how the two sides must compare.
METRICS: dict[str, tuple[str, Callable[[dict], float | None], int]] = {
    "tok/s": ("aggregate tok/s", lambda s: s["tok_s"], 1),
    "ttft95": ("TTFT p95 ms", lambda s: s["ttft_ms"]["p95"], 0),
    "tline95": ("T_line p95 ms", lambda s: s["tline_ms"]["p95"], 0),
    "answered": ("requests with a first token", lambda s: s["answered"], 0),
    "good/s": ("goodput good/s", lambda s: s["goodput_per_s"], 2),
}


@dataclass(frozen=True)
class Check:
    """One figure of the issue: ours against a peer, a ratio bound or an absolute bound on ours.

    ``op`` is ``>=`` or ``<=``; with ``absolute`` the bound applies to our value, else to ours/peer.
    """

    phase: str
    editors: int
    metric: str
    ours: str
    peer: str
    op: str
    bound: float
    absolute: bool = False

    def values(self, summaries: Summaries) -> tuple[float | None, float | None]:
        get = METRICS[self.metric][1]
        a = summaries.get((self.ours, self.phase, self.editors))
        b = summaries.get((self.peer, self.phase, self.editors))
        return (None if a is None else get(a)), (None if b is None else get(b))

    def ratio(self, summaries: Summaries) -> float | None:
        a, b = self.values(summaries)
        if a is None or b is None:
            return None
        if b == 0:  # the peer answered nothing: any answer of ours is infinitely more
            return math.inf if a > 0 else None
        return a / b

    def passed(self, summaries: Summaries) -> bool | None:
        """None when a side is missing (phase not run, or nothing answered)."""
        x = self.values(summaries)[0] if self.absolute else self.ratio(summaries)
        if x is None:
            return None
        return x >= self.bound if self.op == ">=" else x <= self.bound

    def target(self) -> str:
        unit = " ms" if self.absolute and self.metric in ("ttft95", "tline95") else ""
        what = self.ours if self.absolute else f"{self.ours}/{self.peer}"
        return f"{what} {'≥' if self.op == '>=' else '≤'} {self.bound:g}{unit}"


def checks_table(checks: list[Check], summaries: Summaries) -> str:
    if not checks:
        return "(no figures: no peer, or none of the phases they compare, ran)"
    head = "| figure | phase | editors | ours | value | peer | value | ratio | target | pass |"
    rows = [head, "|" + "---|" * 10]
    for c in checks:
        name, _, nd = METRICS[c.metric]
        a, b = c.values(summaries)
        ok = c.passed(summaries)
        verdict = "n/a" if ok is None else ("**yes**" if ok else "no")
        ratio = c.ratio(summaries)
        rows.append(
            f"| {name} | {c.phase} | {c.editors} | {c.ours} | {num(a, nd)} | {c.peer} | {num(b, nd)} "
            f"| {num(ratio, 2)} | {c.target()} | {verdict} |"
        )
    return "\n".join(rows)


def report(summaries: Summaries, servers: list[str], checks: list[Check], title: str) -> str:
    return (
        f"## {title}\n\n{detail_table(summaries, servers)}\n\n"
        f"(first token = requests that got one; TTFT over those; good = completed with TTFT < the SLO)\n\n"
        f"{checks_table(checks, summaries)}\n"
    )
