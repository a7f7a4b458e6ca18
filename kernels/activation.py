"""Elementwise and row-wise helpers: GELU (tanh approximation), dropout, softmax, residual adds.

The elementwise kernels take arrays of any (C-contiguous) shape and work on flat views.
"""

import math

from numba import njit, prange

from .flags import JIT, JIT_PARALLEL

GELU_SCALE = math.sqrt(2.0 / math.pi)
GELU_CUBIC = 0.044715
# exp(700) is finite in float64; beyond it gelu(x) is 0 anyway, and Python's math.exp (used
# under NUMBA_DISABLE_JIT) would raise OverflowError instead of returning inf.
EXP_MAX = 700.0


@njit(**JIT_PARALLEL)
def _gelu_forward_flat(out, inp):
    n = inp.shape[0]
    for i in prange(n):
        x = inp[i]
        u = GELU_SCALE * (x + GELU_CUBIC * x * x * x)
        # 0.5 (1 + tanh u) == 1 / (1 + exp(-2u)): same function, one exp, and no cancellation
        # of 1 + tanh(u) ~ 0 for negative x
        out[i] = x / (1.0 + math.exp(min(-2.0 * u, EXP_MAX)))


@njit(**JIT_PARALLEL)
def _gelu_backward_flat(dinp, inp, dout):
    n = inp.shape[0]
    for i in prange(n):
        x = inp[i]
        u = GELU_SCALE * (x + GELU_CUBIC * x * x * x)
        # with s = sigmoid(2u): 0.5 (1 + tanh u) = s and 0.5 (1 - tanh^2 u) = 2 s (1 - s)
        s = 1.0 / (1.0 + math.exp(min(-2.0 * u, EXP_MAX)))
        du = GELU_SCALE * (1.0 + 3.0 * GELU_CUBIC * x * x)
        dinp[i] = (s + 2.0 * x * s * (1.0 - s) * du) * dout[i]


@njit(**JIT)
def gelu_forward(out, inp):
    """WRITES out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), any shape."""
    _gelu_forward_flat(out.reshape(-1), inp.reshape(-1))


@njit(**JIT)
def gelu_backward(dinp, inp, dout):
    """WRITES dinp = gelu'(inp) * dout, any shape."""
    _gelu_backward_flat(dinp.reshape(-1), inp.reshape(-1), dout.reshape(-1))


@njit(**JIT)
def _residual_flat(out, a, b):
    for i in range(out.shape[0]):
        out[i] = a[i] + b[i]


@njit(**JIT)
def residual_forward(out, a, b):
    """WRITES out = a + b, any shape."""
    _residual_flat(out.reshape(-1), a.reshape(-1), b.reshape(-1))


@njit(**JIT)
def _add_flat(dst, src):
    for i in range(dst.shape[0]):
        dst[i] += src[i]


@njit(**JIT)
def add_inplace(dst, src):
    """dst += src, any shape."""
    _add_flat(dst.reshape(-1), src.reshape(-1))


@njit(**JIT)
def _dropout_forward_flat(out, mask, inp, rand, p):
    keep = 1.0 / (1.0 - p)
    for i in range(inp.shape[0]):
        m = keep if rand[i] >= p else 0.0
        mask[i] = m
        out[i] = inp[i] * m


@njit(**JIT)
def dropout_forward(out, mask, inp, rand, p):
    """WRITES mask = (rand >= p) / (1 - p) and out = inp * mask; rand is uniform [0, 1), any shape."""
    if not (0.0 <= p < 1.0):
        raise ValueError("dropout_forward: p must be in [0, 1)")
    _dropout_forward_flat(out.reshape(-1), mask.reshape(-1), inp.reshape(-1), rand.reshape(-1), p)


@njit(**JIT)
def _mul_flat(out, a, b):
    for i in range(out.shape[0]):
        out[i] = a[i] * b[i]


@njit(**JIT)
def dropout_backward(dinp, dout, mask):
    """WRITES dinp = dout * mask, any shape."""
    _mul_flat(dinp.reshape(-1), dout.reshape(-1), mask.reshape(-1))


@njit(**JIT_PARALLEL)
def softmax_forward(out, inp):
    """WRITES out (N, V) = softmax of each row of inp (N, V), max-subtracted, summed in float64."""
    N, V = inp.shape
    for i in prange(N):
        maxv = inp[i, 0]
        for j in range(1, V):
            if inp[i, j] > maxv:
                maxv = inp[i, j]
        total = 0.0
        for j in range(V):
            e = math.exp(inp[i, j] - maxv)
            out[i, j] = e
            total += e
        inv = 1.0 / total
        for j in range(V):
            out[i, j] = out[i, j] * inv
