"""tinylm.kernels: llm.c-style CPU kernels in Numba (outputs first, preallocated buffers).

WRITES means the kernel overwrites its outputs; ADDS means it accumulates into them.
Kernels import only numpy and numba. `reference` holds the slow obvious numpy oracle.

Importing this package sets three environment variables of the process when they are unset (each
explained where it is set below): NUMBA_CACHE_DIR, OMP_WAIT_POLICY and GOMP_SPINCOUNT.
"""

import os

# Numba's cache=True raises at import when it cannot write beside the package (a read-only
# system or pipx install), so point it at a per-user directory before numba is imported.
if not os.environ.get("NUMBA_CACHE_DIR"):
    _cache_root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    _cache_dir = os.path.join(_cache_root, "tinylm", "numba")
    try:
        os.makedirs(_cache_dir, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = _cache_dir
    except OSError:
        pass  # numba falls back to its own locations

# Two thread pools share the cores: OpenBLAS's (matmuls) and numba's OpenMP one (parallel
# kernels), called alternately. By default an OpenMP worker busy-waits after each kernel, which
# keeps OpenBLAS's worker off its core for a scheduler time slice (ms) at every hand-over: on 2
# cores a baby step took 1.3-2.4 s instead of 0.2-0.8 s (loaded machine, ABAB). Passive workers
# sleep, but waking one costs more than a GPT-2 small decoding step's 61 parallel loops can bear
# (24.6 ms a token against 20.3): a short spin (GOMP_SPINCOUNT, some tens of microseconds) before
# sleeping catches the next loop without holding a core for long (baby step 27.0 -> 25.0 ms).
# libgomp reads these when numba first launches a parallel kernel, so setting them here is in time.
# ENV_DEFAULTS: what this import set; `tinylm bench` starts PyTorch's children without them.
ENV_DEFAULTS: dict[str, str] = {}
for _name, _value in (("OMP_WAIT_POLICY", "PASSIVE"), ("GOMP_SPINCOUNT", "10000")):
    if _name not in os.environ:
        os.environ[_name] = ENV_DEFAULTS[_name] = _value


def _import_numba_arraymath_without_scipy_blas() -> None:
    """Numba's first compile or cache load imports numba.np.arraymath, which imports scipy's BLAS
    when scipy is installed, only so that np.dot works inside jitted code. tinylm never calls it
    (matmuls go through numpy's BLAS), and scipy's costs ~15 MB resident and a second OpenBLAS
    thread pool. Import arraymath once with that import failing (numba then just lacks jitted
    np.dot); scipy itself stays importable afterwards."""
    import sys

    if "numba.np.arraymath" in sys.modules or "scipy.linalg.cython_blas" in sys.modules:
        return
    sys.modules["scipy.linalg.cython_blas"] = None  # makes `import scipy.linalg.cython_blas` raise ImportError
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        del sys.modules["scipy.linalg.cython_blas"]


_import_numba_arraymath_without_scipy_blas()

from .memory import DEVICE as DEVICE  # noqa: E402  (where the buffers live; not a kernel)
from .names import CPU_ONLY, KERNELS, export  # noqa: E402

__all__ = export(__name__, globals(), {**KERNELS, **CPU_ONLY})
