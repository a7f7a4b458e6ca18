"""How many cores the CPU kernels use: Numba's thread pool, BLAS's, and when a kernel uses either.

These are process settings (BLAS, the Numba default) or this thread's (parallel kernels allowed);
the context manager puts back what it changed, so code that borrows a setting leaves no trace.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import numba

from tinylm.kernels import flags

_blas = None
_blas_lock = threading.Lock()


def blas_controllers():
    """threadpoolctl controllers of every BLAS library loaded at the first call (found once: the scan takes
    ms and row shards ask every step). A BLAS library loaded later (torch's, say) is not capped."""
    global _blas
    with _blas_lock:
        if _blas is None:
            from threadpoolctl import ThreadpoolController

            _blas = ThreadpoolController().select(user_api="blas").lib_controllers
        return _blas


def limit_threads(n: int, *, blas: int | None = None) -> None:
    """Cap BLAS and Numba threads at n for the rest of the process (for a UI that must keep a core, or
    a fair benchmark); blas, when given, caps BLAS alone lower still (row shards already use every core).
    Numba's count is per thread: call it from the thread that will run the kernels."""
    from threadpoolctl import threadpool_limits

    n = max(1, int(n))
    threadpool_limits(limits=n)
    if blas is not None:
        threadpool_limits(limits=max(1, int(blas)), user_api="blas")
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    flags.allow_parallel(n > 1)  # one thread: the serial compilation of every kernel


def parallel_allowed() -> bool:
    """Whether kernels called from this thread may use Numba's thread pool."""
    return flags.parallel_allowed()


@contextmanager
def kernel_settings(
    *, parallel: bool | None = None, min_parallel_work: int | None = None, blas_threads: int | None = None
):
    """Within the block: whether this thread's kernels may use Numba's thread pool (parallel), the
    least work (elements) for which a kernel does so, in every thread (min_parallel_work: 0 runs every
    parallel compilation, a huge number none), and BLAS's threads (blas_threads). None leaves a
    setting alone; every one changed is put back on exit."""
    blas = blas_controllers() if blas_threads is not None else []
    saved_blas = [lib.get_num_threads() for lib in blas]
    with flags.kernel_settings(parallel=parallel, min_parallel_work=min_parallel_work):
        for lib in blas:
            lib.set_num_threads(blas_threads)
        try:
            yield
        finally:
            for lib, n in zip(blas, saved_blas):
                lib.set_num_threads(n)
