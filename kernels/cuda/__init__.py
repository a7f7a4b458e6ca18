"""tinylm.kernels.cuda: numba.cuda versions of every tinylm.kernels kernel, same contract.

Outputs first, preallocated *device* arrays (numba DeviceNDArray or anything with
__cuda_array_interface__), WRITES/ADDS exactly as the CPU kernel of the same name. Importing
never needs a GPU; calling a kernel without one (and without NUMBA_ENABLE_CUDASIM=1) raises
RuntimeError with a one-line explanation. Choose a backend with tinylm.kernels.backend.

numba.cuda: Numba 0.68 still ships its built-in CUDA target (upstream deprecates it in favour of
NVIDIA's `numba-cuda` package, which provides the same `numba.cuda` module when installed), and
its simulator works, so nothing extra is installed; these modules only `from numba import cuda`.
Without a GPU: tests/test_cuda_kernels.py runs every kernel under NUMBA_ENABLE_CUDASIM=1 (where
launch sizes shrink, see _runtime.BLOCK) and, given libNVVM (CUDA_HOME or the pip package
nvidia-cuda-nvcc-cu12), compiles each one to PTX for a real GPU, which the simulator cannot check.
"""

from ._runtime import NO_GPU_MESSAGE, cuda_available, simulator_enabled
from .activation import (
    add_inplace,
    dropout_backward,
    dropout_forward,
    gelu_backward,
    gelu_backward_inplace,
    gelu_forward,
    residual_forward,
    softmax_forward,
)
from .attention import attention_backward, attention_forward
from .crossentropy import count_correct, crossentropy_backward, crossentropy_forward
from .encoder import encoder_backward, encoder_forward, gather_windows
from .layernorm import layernorm_backward, layernorm_forward
from .matmul import lm_head_backward, lm_head_forward, matmul_backward, matmul_forward
from .optim import adamw_update, grad_norm, scale_inplace

__all__ = [
    "encoder_forward",
    "gather_windows",
    "encoder_backward",
    "layernorm_forward",
    "layernorm_backward",
    "matmul_forward",
    "matmul_backward",
    "lm_head_forward",
    "lm_head_backward",
    "attention_forward",
    "attention_backward",
    "gelu_forward",
    "gelu_backward",
    "gelu_backward_inplace",
    "softmax_forward",
    "residual_forward",
    "add_inplace",
    "dropout_forward",
    "dropout_backward",
    "crossentropy_forward",
    "crossentropy_backward",
    "count_correct",
    "grad_norm",
    "scale_inplace",
    "adamw_update",
    "NO_GPU_MESSAGE",
    "cuda_available",
    "simulator_enabled",
]
