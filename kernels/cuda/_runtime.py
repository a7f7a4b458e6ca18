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


INSTALL_HINT = "pip install 'tinylm-tui[cuda]'"


def missing() -> str | None:
    """What stops the CUDA kernels from running here, in one line with what to do, or None when they
    can run (a GPU numba can compile for, or the simulator). Initialises the driver."""
    if IMPORT_ERROR is not None:
        return f"this numba has no CUDA target ({IMPORT_ERROR}); install it with: {INSTALL_HINT}"
    if simulator_enabled():
        return None
    if not cuda_available():
        try:
            from numba.cuda.cudadrv.driver import driver

            count = driver.get_device_count()
        except Exception as exc:  # no libcuda, or a driver too old for this numba
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
            said = lines[1] if lines[0].endswith(":") and len(lines) > 1 else lines[0]  # after "Error at driver init:"
            return (
                f"no NVIDIA driver found ({said.rstrip('.')}); the GPU path needs an NVIDIA GPU with "
                f"its driver, then {INSTALL_HINT}; or use --device cpu"
            )
        if not count:
            return "the NVIDIA driver sees no GPU (none present, or hidden by CUDA_VISIBLE_DEVICES); use --device cpu"
        return f"numba cannot use the GPU the driver reports; check the driver, then {INSTALL_HINT}"
    try:
        from numba.cuda.cudadrv import nvvm

        compiles = nvvm.is_available()
    except Exception:  # a numba laid out otherwise: the first compilation says what is wrong
        compiles = True
    if not compiles:
        return f"a GPU is here but numba cannot compile for it (libNVVM not found); install it with: {INSTALL_HINT}"
    return None


def require_cuda():
    """Raise the one-line no-GPU error unless a GPU (or the simulator) is there."""
    if not (simulator_enabled() or cuda_available()):
        raise RuntimeError(NO_GPU_MESSAGE)


def launch(kernel, blocks, threads, *args):
    """kernel[blocks, threads](*args); skipped when the grid is empty (nothing to do).

    A host array among the arguments is refused under the simulator: on a GPU numba would copy it
    to the device and back at every launch, silently."""
    if _grid_size(blocks) == 0:
        return
    if simulator_enabled():
        for arg in args:
            if isinstance(arg, np.ndarray) and arg.ndim > 0:
                name = getattr(kernel, "__name__", "a kernel")
                raise TypeError(f"{name}: a host array was passed where a device array belongs")
    kernel[blocks, threads](*args)


def _grid_size(blocks):
    if isinstance(blocks, tuple):
        return math.prod(blocks)
    return blocks


def device_zeros(shape, dtype):
    """A zeroed device array."""
    return to_device(np.zeros(shape, dtype))


def to_device(host):
    """A new device array holding a copy of a C-contiguous host array (see SimDeviceArray)."""
    array = cuda.to_device(host)
    return _strict(array) if simulator_enabled() else array


def to_host(device_array):
    """Copy a device array back; this synchronises with the device."""
    return device_array.copy_to_host()


def copy_to_device(dst, src):
    """WRITES the C-contiguous device array dst = src (a host array, or a device array of dst's size)."""
    dst.copy_to_device(src)


def _strict(array):
    global _SimDeviceArray
    if _SimDeviceArray is None:
        _SimDeviceArray = _make_sim_device_array()
    return _SimDeviceArray(array._ary, array.stream)


_SimDeviceArray = None


def _make_sim_device_array():
    """The simulator's device array, held to what a real one offers.

    The simulator wraps numpy arrays, and lets numpy work on them (sum, fill, astype, arithmetic,
    np.asarray): host code that does so passes under the simulator and fails, or crawls one
    element per transfer, on a GPU. This subclass refuses all of that, so the simulator tests catch
    it; views (slices, reshape, ravel, transpose) stay of this class."""
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

    # Attributes FakeCUDAArray hands on to its numpy array that a numba DeviceNDArray also has
    # (squeeze is used by the simulator's own copy checks).
    allowed = {"strides", "ndim", "size", "dtype", "flags", "squeeze", "__cuda_array_interface__"}

    def refuse(name):
        def method(self, *args, **kwargs):
            raise TypeError(f"numpy's {name} on a device array: copy it to the host first (to_host)")

        return method

    class SimDeviceArray(FakeCUDAArray):
        __array__ = refuse("conversion (np.asarray)")
        __array_ufunc__ = refuse("ufuncs")
        __array_function__ = refuse("functions")
        __eq__, __ne__, __hash__ = object.__eq__, object.__ne__, object.__hash__
        for _op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "lt", "le", "gt", "ge"):
            locals()[f"__{_op}__"] = refuse(f"operator {_op}")
            locals()[f"__i{_op}__"] = refuse(f"operator {_op}")
        del _op

        def __getattr__(self, name):
            if name in allowed:
                return getattr(self._ary, name)
            raise AttributeError(f"a device array has no {name!r}: copy it to the host first (to_host)")

        def __getitem__(self, idx):
            ret = self._ary[idx]
            return SimDeviceArray(ret, self.stream) if isinstance(ret, np.ndarray) else ret

        def bind(self, stream=0):
            return SimDeviceArray(self._ary, stream)

        def transpose(self, axes=None):
            return SimDeviceArray(np.transpose(self._ary, axes=axes))

        def reshape(self, *args, **kwargs):
            shape = args[0] if len(args) == 1 and isinstance(args[0], tuple) else args
            if -1 in shape:
                raise ValueError("reshape: give every dimension (-1 is the simulator's, not the device's)")
            if not self._ary.flags.c_contiguous:
                raise ValueError("reshape of a non-contiguous device array")
            return SimDeviceArray(self._ary.reshape(*args, **kwargs))

        def ravel(self, *args, **kwargs):
            if not self._ary.flags.c_contiguous:
                raise ValueError("ravel of a non-contiguous device array")
            return SimDeviceArray(self._ary.ravel(*args, **kwargs))

        def view(self, *args, **kwargs):
            return SimDeviceArray(self._ary.view(*args, **kwargs))

        def copy_to_device(self, ary, stream=0):
            if isinstance(ary, FakeCUDAArray):  # the simulator would copy it through numpy's conversion
                if not (ary._ary.flags.c_contiguous and self._ary.flags.c_contiguous):
                    raise ValueError("copy_to_device between non-contiguous device arrays")
                if ary._ary.shape != self._ary.shape or ary._ary.dtype != self._ary.dtype:
                    raise ValueError("copy_to_device: device arrays of different shapes or dtypes")
                np.copyto(self._ary, ary._ary)
            else:
                super().copy_to_device(ary, stream)

    return SimDeviceArray


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
