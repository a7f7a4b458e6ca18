"""Buffers for the kernels of this package: arrays in GPU memory, and the copies between them and
the host (the model makes these only where a screen, a log line or a checkpoint needs the values)."""

import numpy as np

from . import _runtime as rt
from ._runtime import cuda, elementwise

DEVICE = "cuda"  # where this package's buffers live


def zeros(shape, dtype):
    """A new zero-filled C-ordered device array, for the kernels' inputs and outputs."""
    rt.require_cuda()
    return rt.device_zeros(shape, dtype)


def from_host(host):
    """A new device array holding a copy of the host array."""
    rt.require_cuda()
    return rt.to_device(np.ascontiguousarray(host))


def to_host(buf):
    """A new numpy array holding a copy of the device array (this waits for the device)."""
    return rt.to_host(buf)


def copy_in(dst, src):
    """WRITES dst = src: a host array (copied to the device) or a device array, of dst's shape and
    dtype; dst must be C-contiguous (a view of a whole row block is)."""
    rt.require_cuda()
    if src is dst:
        return
    if not hasattr(src, "copy_to_host"):  # host data: a numpy array, a list, a scalar
        src = np.asarray(src)
    if tuple(src.shape) != tuple(dst.shape):
        raise ValueError(f"copy_in: shape {tuple(src.shape)} into {tuple(dst.shape)}")
    if isinstance(src, np.ndarray):
        src = np.ascontiguousarray(src, dtype=dst.dtype)
    elif src.dtype != dst.dtype:
        raise ValueError(f"copy_in: dtype {src.dtype} into {dst.dtype}")
    if dst.size:
        rt.copy_to_device(dst, src)


@cuda.jit
def _zero_kernel(x):
    i = cuda.grid(1)
    if i < x.shape[0]:
        x[i] = 0


def fill_zero(buf):
    """WRITES buf = 0, any shape (C-contiguous)."""
    rt.require_cuda()
    elementwise(_zero_kernel, buf)
