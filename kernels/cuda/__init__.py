"""tinylm.kernels.cuda: numba.cuda versions of every tinylm.kernels kernel, same contract.

Outputs first, preallocated *device* arrays (numba DeviceNDArray or anything with
__cuda_array_interface__), WRITES/ADDS exactly as the CPU kernel of the same name. Importing
never needs a GPU; calling a kernel without one (and without NUMBA_ENABLE_CUDASIM=1) raises
RuntimeError with a one-line explanation. Choose a backend with tinylm.kernels.backend.

numba.cuda: numba still ships a built-in CUDA target, deprecated in favour of NVIDIA's
`numba-cuda` package, which provides the same `numba.cuda` module when installed (the `cuda` extra
installs it, with the CUDA wheels it compiles with); these modules only `from numba import cuda`,
and without the extra the built-in target and its simulator serve the tests.
Without a GPU: tests/test_cuda_kernels.py runs every kernel under NUMBA_ENABLE_CUDASIM=1 (where
launch sizes shrink, see _runtime.BLOCK) and, given libNVVM (CUDA_HOME or the pip package
nvidia-cuda-nvcc-cu12), compiles each one to PTX for a real GPU, which the simulator cannot check.
"""

from ..names import KERNELS, export
from ._runtime import NO_GPU_MESSAGE, cuda_available, simulator_enabled
from .memory import DEVICE as DEVICE  # where the buffers live; not a kernel

__all__ = [*export(__name__, globals(), KERNELS), "NO_GPU_MESSAGE", "cuda_available", "simulator_enabled"]
