"""Residual sums: out = a + b and dst += src, any shape."""

from numba import njit

from .flags import JIT

# memory-bound and small: serial (a thread-pool launch costs more than the loop)


@njit(**JIT)
def residual_forward(out, a, b):
    """WRITES out = a + b, any shape."""
    o = out.reshape(-1)
    x = a.reshape(-1)
    y = b.reshape(-1)
    for i in range(o.shape[0]):
        o[i] = x[i] + y[i]


@njit(**JIT)
def add_inplace(dst, src):
    """dst += src, any shape."""
    d = dst.reshape(-1)
    s = src.reshape(-1)
    for i in range(d.shape[0]):
        d[i] += s[i]
