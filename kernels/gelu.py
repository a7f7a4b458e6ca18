"""GELU, the tanh approximation GPT-2 uses: forward, backward, and backward in place.

The kernels take arrays of any (C-contiguous) shape and work on flat views. Each public kernel is
itself the jitted entry point: a cached function that calls a parallel one can segfault when
loaded from numba's cache (a numba bug), so parallel kernels are never called from other jitted code.
"""

import math

from numba import njit, prange

from .expf import _F, _ONE, exp_f32
from .flags import CHUNK, JIT, parallel_kernel

GELU_SCALE = math.sqrt(2.0 / math.pi)
GELU_CUBIC = 0.044715
# exp(700) is finite in float64; beyond it gelu(x) is 0 anyway, and Python's math.exp (used
# under NUMBA_DISABLE_JIT) would raise OverflowError instead of returning inf.
EXP_MAX = 700.0

# ---------------------------------------------------------------- GELU
_GS32 = _F(GELU_SCALE)
_GC32 = _F(GELU_CUBIC)
_M2 = _F(-2.0)
_TWO = _F(2.0)
_GC3_32 = _F(3.0 * GELU_CUBIC)


@njit(**JIT)
def _gelu_forward_span(o, x):
    """o = gelu(x) on 1-D contiguous slices."""
    if x.itemsize == 4:
        for i in range(x.shape[0]):
            xi = x[i]
            u = _GS32 * (xi + _GC32 * xi * xi * xi)
            o[i] = xi / (_ONE + exp_f32(_M2 * u))
    else:
        for i in range(x.shape[0]):
            xi = x[i]
            u = GELU_SCALE * (xi + GELU_CUBIC * xi * xi * xi)
            o[i] = xi / (1.0 + math.exp(min(-2.0 * u, EXP_MAX)))


@njit(inline="always", **JIT)
def _gelu_grad32(xi):
    """gelu'(xi) for a float32 xi, in float32 arithmetic (see gelu_backward)."""
    u = _GS32 * (xi + _GC32 * xi * xi * xi)
    s = _ONE / (_ONE + exp_f32(_M2 * u))
    du = _GS32 * (_ONE + _GC3_32 * xi * xi)
    return s + _TWO * xi * s * (_ONE - s) * du


@njit(inline="always", **JIT)
def _gelu_grad64(xi):
    """gelu'(xi) for a float64 xi."""
    u = GELU_SCALE * (xi + GELU_CUBIC * xi * xi * xi)
    s = 1.0 / (1.0 + math.exp(min(-2.0 * u, EXP_MAX)))
    du = GELU_SCALE * (1.0 + 3.0 * GELU_CUBIC * xi * xi)
    return s + 2.0 * xi * s * (1.0 - s) * du


@njit(**JIT)
def _gelu_backward_span(di, x, do):
    """di = gelu'(x) * do on 1-D contiguous slices."""
    if x.itemsize == 4:
        for i in range(x.shape[0]):
            di[i] = _gelu_grad32(x[i]) * do[i]
    else:
        for i in range(x.shape[0]):
            di[i] = _gelu_grad64(x[i]) * do[i]


@njit(**JIT)
def _gelu_backward_inplace_span(d, x):
    """d *= gelu'(x) on 1-D contiguous slices. A kernel of its own: gelu_backward with dinp and
    dout the same array fails LLVM's overlap check and runs its scalar loop, ~6x slower."""
    if x.itemsize == 4:
        for i in range(x.shape[0]):
            d[i] = _gelu_grad32(x[i]) * d[i]
    else:
        for i in range(x.shape[0]):
            d[i] = _gelu_grad64(x[i]) * d[i]


@parallel_kernel()
def gelu_forward(out, inp):
    """WRITES out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), any shape.

    Computed as x / (1 + exp(-2u)), the same function: one exp, and no cancellation in
    1 + tanh(u) ~ 0 for negative x. float32 uses exp_f32 in float32 arithmetic.
    """
    o = out.reshape(-1)
    x = inp.reshape(-1)
    n = x.shape[0]
    for c in prange((n + CHUNK - 1) // CHUNK):
        lo = c * CHUNK
        hi = min(lo + CHUNK, n)
        _gelu_forward_span(o[lo:hi], x[lo:hi])


@parallel_kernel()
def gelu_backward(dinp, inp, dout):
    """WRITES dinp = gelu'(inp) * dout, any shape.

    With s = sigmoid(2u): 0.5 (1 + tanh u) = s and 0.5 (1 - tanh^2 u) = 2 s (1 - s), so
    gelu'(x) = s + 2 x s (1 - s) u'(x).
    """
    di = dinp.reshape(-1)
    x = inp.reshape(-1)
    do = dout.reshape(-1)
    n = x.shape[0]
    for c in prange((n + CHUNK - 1) // CHUNK):
        lo = c * CHUNK
        hi = min(lo + CHUNK, n)
        _gelu_backward_span(di[lo:hi], x[lo:hi], do[lo:hi])


@parallel_kernel()
def gelu_backward_inplace(dout, inp):
    """dout *= gelu'(inp), any shape: gelu_backward writing over its own dout (saves a buffer)."""
    d = dout.reshape(-1)
    x = inp.reshape(-1)
    n = x.shape[0]
    for c in prange((n + CHUNK - 1) // CHUNK):
        lo = c * CHUNK
        hi = min(lo + CHUNK, n)
        _gelu_backward_inplace_span(d[lo:hi], x[lo:hi])
