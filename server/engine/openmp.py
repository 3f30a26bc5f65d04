"""The engine thread's OpenMP team: named after the engine, and handed back while it is idle.

llama.cpp's CPU backend (built with OpenMP, as llama-cpp-python builds it on Linux) runs each
graph on a team of threads that libgomp keeps docked on the thread that started it, for as long as
that thread lives: one team per engine thread.  Once libgomp manages more threads than the
process has CPUs, every barrier spins only 100 times before it sleeps on a futex, and a decode
crosses hundreds of barriers.  So one idle loaded model (a second chat model, an embedding model)
made every token of the busy one wait on futexes: on 2 cores, SmolLM2's 6.2 ms per token became
10.3 ms.  ``omp_pause_resource_all`` frees the calling thread's team (and libgomp's count of its
threads); the next decode starts a new one, a few pthread_creates.  Two models that decode at the
same time still share the CPUs, with libgomp's short spinning, which is what keeps them from
spinning against each other.

Where llama.cpp was built without OpenMP (its own thread pool: macOS, Windows, ``-DGGML_OPENMP=OFF``)
libgomp is not loaded and both functions do nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import sys

log = logging.getLogger(__name__)

OMP_PAUSE_SOFT = 1  # omp_pause_resource_t: free the threads, keep nothing else to restore
PR_SET_NAME = 15  # prctl: the calling thread's name (15 bytes), inherited by threads it starts


@functools.cache
def _pause() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """libgomp's ``omp_pause_resource_all`` when the process already has libgomp loaded."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        lib = ctypes.CDLL("libgomp.so.1", mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except OSError:
        return None
    fn = getattr(lib, "omp_pause_resource_all", None)
    if fn is None:  # libgomp before GCC 9
        return None
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
    return fn


def release_team() -> bool:
    """Free the calling thread's OpenMP team; True when libgomp did (or had none to free)."""
    pause = _pause()
    if pause is None:
        return False
    rc = pause(OMP_PAUSE_SOFT)
    if rc != 0:
        log.debug("omp_pause_resource_all answered %d", rc)
    return rc == 0


def name_thread(name: str) -> None:
    """The calling thread's name as ``top -H`` and ``/proc/self/task/*/comm`` show it; the
    OpenMP team it starts inherits the name, so a model's threads can be told apart."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)
