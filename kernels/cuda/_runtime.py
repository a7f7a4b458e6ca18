"""What every CUDA kernel module shares: the guarded numba.cuda import, the no-GPU error,
launch and allocation helpers, block reductions and per-dtype kernel factories.

Host wrappers reach launch/allocation only through this module's attributes (`rt.launch`,
`rt.device_zeros`, `rt.to_host`) so a compile-only check can swap them for PTX compilation.
"""

import math
import os

import numpy as np

try:
    from numba import cuda

    IMPORT_ERROR = None
except Exception as exc:  # a numba without any CUDA target: keep the package importable
    IMPORT_ERROR = exc

    class _NoCuda:
        """Stand-in whose jit leaves functions as plain Python, so the modules still import."""

        @staticmethod
        def jit(*args, **kwargs):
            if args and callable(args[0]):
                return args[0]
            return lambda fn: fn

        @staticmethod
        def is_available():
            return False

    cuda = _NoCuda()

from numba import config as _numba_config
from numba import from_dtype

NO_GPU_MESSAGE = (
    "CUDA backend requested but no CUDA GPU is available (numba.cuda.is_available() is False); use backend 'cpu'"
)


def _power_of_two_setting(name, default):
    value = int(os.environ.get(name, default))
    if value < 1 or value & (value - 1):
        raise ValueError(f"{name} must be a power of two, got {value}")
    return value


# Launch geometry is compile-time (shared-array sizes). The simulator runs every GPU thread as a
# Python thread, so under it the defaults shrink: a 128-thread block-reduction row took ~0.6 s.
# Small blocks also push the tiny test shapes through the strided and multi-tile code paths.
# Threads per block for row reductions and elementwise kernels: a power of two (tree reductions).
BLOCK = _power_of_two_setting("TINYLM_CUDA_BLOCK", 8 if _numba_config.ENABLE_CUDASIM else 128)
# Side of the square matmul tile (TILE x TILE threads per block).
TILE = _power_of_two_setting("TINYLM_CUDA_TILE", 4 if _numba_config.ENABLE_CUDASIM else 16)
# Upper bound on blocks for grid-stride reductions: a fixed grid keeps the summation order,
# and so the result, independent of anything but the input size.
MAX_REDUCE_BLOCKS = 256

_available = None


def simulator_enabled() -> bool:
    """True when numba runs CUDA kernels in its Python simulator (NUMBA_ENABLE_CUDASIM=1)."""
    return bool(_numba_config.ENABLE_CUDASIM)


def cuda_available() -> bool:
    """numba.cuda.is_available(), asked once (it initialises the driver)."""
    global _available
    if _available is None:
        try:
            _available = bool(cuda.is_available())
        except Exception:
            _available = False
    return _available


def require_cuda():
    """Raise the one-line no-GPU error unless a GPU (or the simulator) is there."""
    if not (simulator_enabled() or cuda_available()):
        raise RuntimeError(NO_GPU_MESSAGE)


def launch(kernel, blocks, threads, *args):
    """kernel[blocks, threads](*args); skipped when the grid is empty (nothing to do)."""
    if _grid_size(blocks) == 0:
        return
    kernel[blocks, threads](*args)


def _grid_size(blocks):
    if isinstance(blocks, tuple):
        return math.prod(blocks)
    return blocks


def device_zeros(shape, dtype):
    """A zeroed device array (small scratch: error flags, partial sums, results)."""
    return cuda.to_device(np.zeros(shape, dtype))


def to_host(device_array):
    """Copy a (small) device array back; this synchronises with the device."""
    return device_array.copy_to_host()


def blocks_for(n, threads=BLOCK):
    """Blocks of `threads` covering n items (0 when n is 0)."""
    return (n + threads - 1) // threads


def flat(array):
    """1-D view of a C-contiguous device array, for the any-shape elementwise kernels."""
    return array.ravel()


def by_dtype(factory):
    """Cache factory(numba dtype, *extra) -> kernel, for kernels whose shared memory, accumulator
    or constants must have the data's dtype: shared arrays need a compile-time dtype, and a
    float64 constant would turn float32 arithmetic into float64 (slow on most GPUs)."""
    cache = {}

    def get(np_dtype, *extra):
        key = (np.dtype(np_dtype).str, *extra)
        if key not in cache:
            cache[key] = factory(from_dtype(np.dtype(np_dtype)), *extra)
        return cache[key]

    return get


def scalar(dt, value):
    """value as a numpy scalar of numba dtype dt: a kernel constant that keeps dt arithmetic."""
    return np.dtype(str(dt)).type(value)


@cuda.jit(device=True)
def block_sum(buf, tid, value):
    """Sum of `value` over the BLOCK threads (float64 shared buf of BLOCK); every thread gets it.

    All threads of the block must call it (it synchronises).
    """
    buf[tid] = value
    cuda.syncthreads()
    stride = BLOCK // 2
    while stride > 0:
        if tid < stride:
            buf[tid] += buf[tid + stride]
        cuda.syncthreads()
        stride //= 2
    total = buf[0]
    cuda.syncthreads()  # buf is reused by the next reduction
    return total


@cuda.jit(device=True)
def block_max(buf, tid, value):
    """Max of `value` over the BLOCK threads (a NaN from another thread is skipped); all get it."""
    buf[tid] = value
    cuda.syncthreads()
    stride = BLOCK // 2
    while stride > 0:
        if tid < stride:
            other = buf[tid + stride]
            if other > buf[tid]:
                buf[tid] = other
        cuda.syncthreads()
        stride //= 2
    best = buf[0]
    cuda.syncthreads()
    return best


def elementwise(kernel, first, *rest):
    """Launch an elementwise kernel over flat views of C-contiguous device arrays, one thread per element."""
    n = first.size
    if n == 0:
        return  # nothing to do, and a zero-size device array may refuse to ravel
    launch(kernel, blocks_for(n), BLOCK, flat(first), *[flat(a) for a in rest])
