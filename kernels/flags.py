"""Numba jit options shared by every kernel: one place to change them."""

import contextlib
import functools
import threading
import types

from numba import config, njit

# Safe fast-math: lets LLVM reassociate and vectorise reductions, but keeps IEEE
# semantics for inf/NaN ("nnan"/"ninf" are left out) because masked attention scores are -inf
# and a NaN loss must stay visible instead of being optimised away.
SAFE_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

# Every kernel is nogil: training runs in a worker thread next to the UI, whose key handling a
# GIL-holding kernel would hold up for as long as the kernel runs.
# error_model="numpy": numba's default ("python") tests every float division for a zero divisor
# to raise ZeroDivisionError; that branch stops LLVM vectorising any loop that divides
# (AdamW, GELU, exp) and costs up to 8x. With "numpy" a division by zero gives inf/nan as in numpy.
JIT = dict(cache=True, nogil=True, fastmath=SAFE_FASTMATH, error_model="numpy")

# For kernels with enough independent work per call to amortise a thread-pool launch.
JIT_PARALLEL = dict(JIT, parallel=True)

# Below this much work (elements touched) a parallel kernel runs its loop serially: waking the
# thread pool costs 10-50 us (more with OMP_WAIT_POLICY=PASSIVE, see __init__), more than a loop
# of ~30k elements. Keeps tiny models (the `slm` step is well under a millisecond) serial.
PARALLEL_MIN_WORK = 1 << 15

# elements per parallel chunk of an elementwise kernel: large enough to amortise scheduling,
# small enough to balance two threads
CHUNK = 1 << 14


# ----- one kernel, compiled twice: serial and parallel --------------------------------------

_thread = threading.local()
# With one Numba thread (NUMBA_NUM_THREADS=1, or limit_threads(1)) a parallel compilation only adds a
# pool launch to every call and the slowest compile of all to a cold start.
_parallel_default = config.NUMBA_NUM_THREADS > 1


def allow_parallel(allowed: bool, *, this_thread: bool = False) -> None:
    """Let parallel kernels use the Numba thread pool (or not), in every thread or only this one.
    A data-parallel training worker turns it off for itself: each worker is one core's worth."""
    global _parallel_default
    if this_thread:
        _thread.parallel = allowed
    else:
        _parallel_default = allowed


def parallel_allowed() -> bool:
    """Whether a parallel kernel called from this thread may use the thread pool."""
    return getattr(_thread, "parallel", _parallel_default)


@contextlib.contextmanager
def kernel_settings(*, parallel: bool | None = None, min_parallel_work: int | None = None):
    """Within the block, this thread's parallel kernels may (or may not) use the thread pool, and
    (in every thread) a kernel runs its parallel compilation from min_parallel_work elements of work
    up; None leaves a setting as it is. Both are put back on exit."""
    global PARALLEL_MIN_WORK
    saved_thread = getattr(_thread, "parallel", None)  # None: this thread follows the process default
    saved_work = PARALLEL_MIN_WORK
    if parallel is not None:
        _thread.parallel = parallel
    if min_parallel_work is not None:
        PARALLEL_MIN_WORK = min_parallel_work
    try:
        yield
    finally:
        if min_parallel_work is not None:
            PARALLEL_MIN_WORK = saved_work
        if parallel is not None:
            if saved_thread is None:
                del _thread.parallel
            else:
                _thread.parallel = saved_thread


def _renamed(fn, suffix: str):
    """A copy of fn under another name: Numba keys its cache files by qualified name, so the
    serial and the parallel compilation of one source each get their own."""
    clone = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix, fn.__defaults__, fn.__closure__)
    clone.__qualname__ = fn.__qualname__ + suffix
    clone.__module__, clone.__doc__ = fn.__module__, fn.__doc__
    return clone


def parallel_kernel(work_arg: int = 0, work=None):
    """Decorator for a kernel whose outer loop is a prange: compiles it serially (prange is then
    range) and with parallel=True, and calls the parallel one only when the work (elements of
    argument work_arg, or work(*args)) is at least PARALLEL_MIN_WORK and parallel_allowed().

    Two compilations rather than one with a serial branch inside: the serial path then never
    touches the thread pool, and a process that never needs the parallel one (one thread, or
    data-parallel workers) never pays for compiling it, the slowest compile of all.
    """

    def wrap(fn):
        serial_fn = njit(**JIT)(_renamed(fn, "_serial"))
        parallel_fn = njit(**JIT_PARALLEL)(_renamed(fn, "_parallel"))

        if work is None:

            def kernel(*args):
                if args[work_arg].size >= PARALLEL_MIN_WORK and parallel_allowed():
                    return parallel_fn(*args)
                return serial_fn(*args)
        else:

            def kernel(*args):
                if work(*args) >= PARALLEL_MIN_WORK and parallel_allowed():
                    return parallel_fn(*args)
                return serial_fn(*args)

        functools.update_wrapper(kernel, fn)
        kernel.serial, kernel.parallel = serial_fn, parallel_fn
        return kernel

    return wrap
