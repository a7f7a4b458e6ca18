"""Buffers for the kernels of this package: numpy arrays in host memory, and the moves between
them and the host that the model makes (none of them copies here: the buffers are host arrays)."""

import numpy as np

DEVICE = "cpu"  # where this package's buffers live


def zeros(shape, dtype):
    """A new zero-filled C-ordered array of this package's kind, for the kernels' inputs and outputs."""
    return np.zeros(shape, dtype)


def from_host(host):
    """A buffer of this package's kind holding the host array's values (here: the array itself when
    it is C-contiguous, so the caller must not change it afterwards)."""
    return np.ascontiguousarray(host)


def to_host(buf):
    """The buffer's values as a numpy array (here: the buffer itself; copy it to keep it)."""
    return buf


def copy_in(dst, src):
    """WRITES dst = src: a host array or a buffer of this package's kind, of dst's shape."""
    if src is not dst:
        dst[...] = src


def fill_zero(buf):
    """WRITES buf = 0, any shape."""
    buf.fill(0)
