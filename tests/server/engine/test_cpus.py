"""Default thread count: physical cores within the process's CPU affinity."""

from __future__ import annotations

from llamita.server.engine.cpus import allowed_cpus, physical_cores


def cpuinfo(*cpus: tuple[int, int, int]) -> str:
    """``/proc/cpuinfo`` blocks for (processor, physical id, core id)."""
    return "\n\n".join(
        f"processor\t: {p}\nvendor_id\t: GenuineIntel\nphysical id\t: {pkg}\ncore id\t\t: {core}\n"
        for p, pkg, core in cpus
    )


HYPERTHREADED = cpuinfo((0, 0, 0), (1, 0, 1), (2, 0, 0), (3, 0, 1))  # 2 cores, 2 threads each


def test_hyper_thread_siblings_count_once() -> None:
    assert physical_cores(HYPERTHREADED, {0, 1, 2, 3}) == 2


def test_only_cpus_the_process_may_use_count() -> None:
    assert physical_cores(HYPERTHREADED, {0, 2}) == 1  # both threads of core 0
    assert physical_cores(HYPERTHREADED, {0, 1}) == 2


def test_two_sockets_with_the_same_core_ids_are_different_cores() -> None:
    assert physical_cores(cpuinfo((0, 0, 0), (1, 1, 0)), {0, 1}) == 2


def test_without_core_ids_every_allowed_cpu_counts() -> None:
    arm = "processor\t: 0\nBogoMIPS\t: 50.00\n\nprocessor\t: 1\nBogoMIPS\t: 50.00\n"
    assert physical_cores(arm, {0, 1}) == 2
    assert physical_cores("", {0, 1, 2}) == 3


def test_this_machine_has_at_least_one() -> None:
    assert 1 <= physical_cores() <= len(allowed_cpus())
