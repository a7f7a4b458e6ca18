"""Buffers for the kernels of this package: numpy arrays in host memory."""

import numpy as np


def zeros(shape, dtype):
    """A new zero-filled C-ordered array of this package's kind, for the kernels' inputs and outputs."""
    return np.zeros(shape, dtype)
