"""CPU threads for local inference: forward passes at most one per core, and BLAS on one thread while they run.

Several callers embed at once (ingest embeds several slices at a time), each pass single-threaded and side by side
with the others: multi-threaded OpenBLAS on a transformer's many small matrix products measured 2-10x slower (and
erratic) on 2 cores.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["CORES", "PASSES", "single_blas_thread"]

def _cores() -> int:
    """Cores this process may use: ``MMRAG_LOCAL_THREADS`` when set (a Ray worker sets it to the CPUs Ray gave it,
    so that N workers on N cores do not each size their thread pools for the whole machine), else all of them."""
    given = os.environ.get("MMRAG_LOCAL_THREADS", "")
    return int(given) if given.isdigit() and int(given) > 0 else os.cpu_count() or 1


CORES = _cores()
PASSES = threading.BoundedSemaphore(CORES)
"""Forward passes running at once in this process, over all callers: ingest embeds several slices at a time, and
more single-threaded passes than cores only thrash the caches."""

_blas_lock = threading.Lock()
_blas_users = 0
_blas_limited: list[tuple[Any, int]] = []


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """Limit BLAS to one thread inside the block (threadpoolctl, part of the ``local`` extra).

    The limit is process-wide and callers overlap (ingest embeds several slices at once): the first caller in sets
    it, the last one out restores it. Nested ``threadpool_limits`` blocks on several threads would restore the old
    limit while other calls still run (multi-threaded BLAS under them), and leave whatever limit the last one saw.
    """
    global _blas_users, _blas_limited
    with _blas_lock:
        if _blas_users == 0:
            _blas_limited = _limit_blas()
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _release_blas_control()
                for library, threads in _blas_limited:
                    library.set_num_threads(threads)
                _release_blas_control()
                _blas_limited = []


def _limit_blas() -> list[tuple[Any, int]]:
    """Set every process-wide BLAS to one thread; returns each with the limit to restore.

    BLAS builds threaded with OpenMP are left alone: their limit is OpenMP's, per thread, so setting it here would
    only pin the calling thread (whichever caller came first) to one thread for good, since another thread restores
    it; our encoder threads would not see it anyway. faiss-cpu ships such an OpenBLAS; numpy's wheels use pthreads.
    """
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # still correct, only slower on some machines
        return []
    _release_blas_control()
    limited = []
    for library in ThreadpoolController().lib_controllers:
        if library.user_api == "blas" and getattr(library, "threading_layer", None) != "openmp":
            limited.append((library, library.num_threads))
            library.set_num_threads(1)
    return limited


def _release_blas_control() -> None:
    """Let this thread set OpenBLAS's limit: threadpoolctl >= 3.6 lets only the thread that set it first change it
    (until it calls ``clear_controlling_thread``); ours may be another thread than the one that restores it."""
    try:
        from threadpoolctl import OpenBLASController
    except ImportError:
        return
    clear = getattr(OpenBLASController, "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)
