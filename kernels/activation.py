"""Elementwise and row-wise helpers: GELU (tanh approximation), dropout, softmax, residual adds,
and a vectorisable float32 exp used by the softmax-like kernels.

The elementwise kernels take arrays of any (C-contiguous) shape and work on flat views. Each
public kernel is itself the jitted entry point: a cached function that calls a parallel one
can segfault when loaded from numba's cache (numba issue 8578), so parallel kernels are never
called from other jitted code.
"""

import math

import numpy as np
from numba import njit, prange
from numba.core import types
from numba.extending import intrinsic, overload

from .flags import CHUNK, JIT, parallel_kernel

GELU_SCALE = math.sqrt(2.0 / math.pi)
GELU_CUBIC = 0.044715
# exp(700) is finite in float64; beyond it gelu(x) is 0 anyway, and Python's math.exp (used
# under NUMBA_DISABLE_JIT) would raise OverflowError instead of returning inf.
EXP_MAX = 700.0

# ---------------------------------------------------------------- vectorisable float32 exp
# Without Intel SVML numba's math.exp is a scalar libm call (~8 ns); this one is plain
# arithmetic, which LLVM vectorises 8-wide (~0.4 ns). Cephes expf polynomial with a Cody-Waite
# reduction; 2^n is put together in the float's exponent bits (an integer shift, then a bit
# cast). Max relative error about 3e-7 (5 ulp, reassociation merges the two-step reduction);
# results below float32's normal range are flushed to 0.
_F = np.float32
_LOG2E = _F(1.4426950408889634)
_LN2_HI = _F(0.693359375)
_LN2_LO = _F(-2.12194440e-4)
_P0, _P1, _P2 = _F(1.9875691500e-4), _F(1.3981999507e-3), _F(8.3334519073e-3)
_P3, _P4, _P5 = _F(4.1665795894e-2), _F(1.6666665459e-1), _F(5.0000001201e-1)
# the clamps keep n = round(x / ln 2) in [-126, 127], where 2^n is a normal float32
_XMAX, _XMIN = _F(88.3762626647949), _F(-87.3365478515625)
_ZERO, _HALF, _ONE = _F(0.0), _F(0.5), _F(1.0)
_BIAS, _MANT = np.int32(127), np.int32(23)


def _int_bits_as_f32(i):
    """The float32 whose bit pattern is the int32 i (plain numpy: used under NUMBA_DISABLE_JIT)."""
    return np.array(i, np.int32).view(np.float32)[()]


@overload(_int_bits_as_f32, jit_options=dict(cache=True))
def _int_bits_as_f32_jit(i):
    return lambda i: _bitcast_i32_f32(i)


@intrinsic
def _bitcast_i32_f32(typingctx, i):
    """LLVM bitcast i32 -> float (numba has no scalar .view); vectorises with the loop around it."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))

    return types.float32(types.int32), codegen


@njit(inline="always", **JIT)
def exp_f32(x):
    """exp(x) for a float32 x, vectorisable when inlined into a loop (see above)."""
    xc = _XMAX if x > _XMAX else x
    xc = _XMIN if xc < _XMIN else xc
    n = np.floor(xc * _LOG2E + _HALF)
    r = xc - n * _LN2_HI
    r = r - n * _LN2_LO
    p = _P0
    p = p * r + _P1
    p = p * r + _P2
    p = p * r + _P3
    p = p * r + _P4
    p = p * r + _P5
    p = p * r * r + r + _ONE
    y = p * _int_bits_as_f32((np.int32(n) + _BIAS) << _MANT)  # p * 2^n
    return _ZERO if x < _XMIN else y


@njit(**JIT)
def exp_f32_array(out, inp):
    """WRITES out = exp_f32(inp) for 1-D float32 arrays (for tests and benchmarks)."""
    for i in range(inp.shape[0]):
        out[i] = exp_f32(inp[i])


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


# ---------------------------------------------------------------- residuals and dropout
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


@njit(**JIT)
def dropout_forward(out, mask, inp, rand, p):
    """WRITES mask = (rand >= p) / (1 - p) and out = inp * mask; rand is uniform [0, 1), any shape."""
    if not (0.0 <= p < 1.0):
        raise ValueError("dropout_forward: p must be in [0, 1)")
    o = out.reshape(-1)
    m = mask.reshape(-1)
    x = inp.reshape(-1)
    r = rand.reshape(-1)
    keep = 1.0 / (1.0 - p)
    for i in range(x.shape[0]):
        mi = keep if r[i] >= p else 0.0
        m[i] = mi
        o[i] = x[i] * mi


@njit(**JIT)
def dropout_backward(dinp, dout, mask):
    """WRITES dinp = dout * mask, any shape."""
    di = dinp.reshape(-1)
    do = dout.reshape(-1)
    m = mask.reshape(-1)
    for i in range(di.shape[0]):
        di[i] = do[i] * m[i]


# ---------------------------------------------------------------- softmax


@njit(**JIT)
def _softmax_row(o, x):
    """o = softmax(x) for one row; returns (max, sum of exp(x - max)) for a stable log-sum-exp."""
    V = x.shape[0]
    maxv = x[0]
    for j in range(1, V):
        maxv = x[j] if x[j] > maxv else maxv
    if x.itemsize == 4:
        for j in range(V):
            o[j] = exp_f32(x[j] - maxv)
    else:
        for j in range(V):
            o[j] = math.exp(x[j] - maxv)
    # a separate float64 sum: folded into the exp loop it halves that loop's vector width
    total = 0.0
    for j in range(V):
        total += o[j]
    inv = 1.0 / total
    for j in range(V):
        o[j] = o[j] * inv
    return maxv, total


@parallel_kernel()
def softmax_forward(out, inp):
    """WRITES out (N, V) = softmax of each row of inp (N, V), max-subtracted, summed in float64."""
    N, V = inp.shape
    for i in prange(N):
        _softmax_row(out[i], inp[i])
