"""Buffers for the kernels of this package: arrays in GPU memory."""

from . import _runtime as rt


def zeros(shape, dtype):
    """A new zero-filled C-ordered device array, for the kernels' inputs and outputs."""
    rt.require_cuda()
    return rt.device_zeros(shape, dtype)
