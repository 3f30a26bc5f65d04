"""How many threads llama.cpp should get by default: physical cores this process may run on.

ggml's worker threads spin-wait at every barrier, so two of them on the two hyper-threads of
one core slow each other down instead of helping; Ollama sizes its runner's threads to
physical cores for the same reason.  ``num_thread`` still overrides this per model.
"""

from __future__ import annotations

import os
from pathlib import Path


def allowed_cpus() -> set[int]:
    """Logical CPUs this process may use (its affinity mask, where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def physical_cores(cpuinfo: str | None = None, allowed: set[int] | None = None) -> int:
    """Distinct (package, core) pairs among ``allowed`` CPUs in ``/proc/cpuinfo``.

    Where the file is missing or names no cores (many ARM kernels), every allowed CPU counts.
    """
    allowed = allowed_cpus() if allowed is None else allowed
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    cores: set[tuple[str, str]] = set()
    for block in cpuinfo.split("\n\n"):
        fields = {
            key.strip(): value.strip()
            for key, _, value in (line.partition(":") for line in block.splitlines())
        }
        if not fields.get("processor", "").isdigit() or int(fields["processor"]) not in allowed:
            continue
        if "core id" not in fields:
            return max(len(allowed), 1)
        cores.add((fields.get("physical id", "0"), fields["core id"]))
    return len(cores) or max(len(allowed), 1)
