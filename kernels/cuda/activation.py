"""Elementwise and row-wise helpers on the GPU: GELU (tanh form), dropout, softmax, residual adds.

Elementwise kernels take C-contiguous device arrays of any shape and work on flat views, one
thread per element. Arithmetic runs in the data's dtype (float32 data, float32 math: float64
is 2x to 64x slower on GPUs); reductions (softmax normalisers) still sum in float64.
"""

import math

import numpy as np

from ..gelu import GELU_CUBIC, GELU_SCALE
from . import _runtime as rt
from ._runtime import BLOCK, block_max, block_sum, cuda


def exp_cap(dt):
    """Largest argument passed to exp: it stays finite (beyond it gelu(x) is 0 anyway)."""
    return 80.0 if dt.bitwidth == 32 else 700.0


@cuda.jit(device=True)
def _capped(x, cap):
    """min(x, cap), NaN kept. Not the builtin: numba 0.68's CUDA target fails to compile
    min(float, float) (it picks the generic *args overload; found by the PTX check)."""
    if x > cap:
        return cap
    return x


def _make_gelu_forward(dt):
    gs, gc = rt.scalar(dt, GELU_SCALE), rt.scalar(dt, GELU_CUBIC)
    one, m2, cap = rt.scalar(dt, 1.0), rt.scalar(dt, -2.0), rt.scalar(dt, exp_cap(dt))

    @cuda.jit
    def gelu_forward_kernel(out, inp):
        i = cuda.grid(1)
        if i < inp.shape[0]:
            x = inp[i]
            u = gs * (x + gc * x * x * x)
            e = _capped(m2 * u, cap)
            # 0.5 (1 + tanh u) == 1 / (1 + exp(-2u)): one exp, no cancellation for negative x
            out[i] = x / (one + math.exp(e))

    return gelu_forward_kernel


def _make_gelu_backward(dt):
    gs, gc, gc3 = rt.scalar(dt, GELU_SCALE), rt.scalar(dt, GELU_CUBIC), rt.scalar(dt, 3.0 * GELU_CUBIC)
    one, two, m2 = rt.scalar(dt, 1.0), rt.scalar(dt, 2.0), rt.scalar(dt, -2.0)
    cap = rt.scalar(dt, exp_cap(dt))

    @cuda.jit
    def gelu_backward_kernel(dinp, inp, dout):
        i = cuda.grid(1)
        if i < inp.shape[0]:
            x = inp[i]
            u = gs * (x + gc * x * x * x)
            # with s = sigmoid(2u): gelu'(x) = s + 2 x s (1 - s) u'(x)
            s = one / (one + math.exp(_capped(m2 * u, cap)))
            du = gs * (one + gc3 * x * x)
            dinp[i] = (s + two * x * s * (one - s) * du) * dout[i]

    return gelu_backward_kernel


_gelu_forward_kernel = rt.by_dtype(_make_gelu_forward)
_gelu_backward_kernel = rt.by_dtype(_make_gelu_backward)


@cuda.jit
def _residual_kernel(out, a, b):
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = a[i] + b[i]


@cuda.jit
def _add_kernel(dst, src):
    i = cuda.grid(1)
    if i < dst.shape[0]:
        dst[i] += src[i]


@cuda.jit
def _dropout_forward_kernel(out, mask, inp, rand, p, keep):
    i = cuda.grid(1)
    if i < inp.shape[0]:
        m = keep if rand[i] >= p else 0.0
        mask[i] = m
        out[i] = inp[i] * m


@cuda.jit
def _mul_kernel(out, a, b):
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = a[i] * b[i]


def _make_softmax(dt):
    @cuda.jit
    def softmax_kernel(out, inp):
        """Block i: row i, max-subtracted, the normaliser summed in float64."""
        N, V = inp.shape
        i = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        buf = cuda.shared.array(BLOCK, np.float64)
        best = -math.inf
        for j in range(tid, V, BLOCK):
            if inp[i, j] > best:
                best = inp[i, j]
        maxv = dt(block_max(buf, tid, best))  # exact: the max is one of the row's values
        part = 0.0
        for j in range(tid, V, BLOCK):
            e = math.exp(inp[i, j] - maxv)
            out[i, j] = e
            part += e
        inv = dt(1.0 / block_sum(buf, tid, part))
        for j in range(tid, V, BLOCK):
            out[i, j] = out[i, j] * inv

    return softmax_kernel


_softmax_kernel = rt.by_dtype(_make_softmax)


def _elementwise(kernel, first, *rest):
    n = first.size
    if n == 0:
        return  # nothing to do, and a zero-size device array may refuse to ravel
    rt.launch(kernel, rt.blocks_for(n), BLOCK, rt.flat(first), *[rt.flat(a) for a in rest])


def gelu_forward(out, inp):
    """WRITES out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), any shape."""
    rt.require_cuda()
    _elementwise(_gelu_forward_kernel(out.dtype), out, inp)


def gelu_backward(dinp, inp, dout):
    """WRITES dinp = gelu'(inp) * dout, any shape."""
    rt.require_cuda()
    _elementwise(_gelu_backward_kernel(dinp.dtype), dinp, inp, dout)


def gelu_backward_inplace(dout, inp):
    """dout *= gelu'(inp), any shape (each GPU thread reads its element before writing it)."""
    gelu_backward(dout, inp, dout)


def residual_forward(out, a, b):
    """WRITES out = a + b, any shape."""
    rt.require_cuda()
    _elementwise(_residual_kernel, out, a, b)


def add_inplace(dst, src):
    """dst += src, any shape."""
    rt.require_cuda()
    _elementwise(_add_kernel, dst, src)


def dropout_forward(out, mask, inp, rand, p):
    """WRITES mask = (rand >= p) / (1 - p) and out = inp * mask; rand is uniform [0, 1), any shape."""
    rt.require_cuda()
    if not (0.0 <= p < 1.0):
        raise ValueError("dropout_forward: p must be in [0, 1)")
    n = inp.size
    if n == 0:
        return
    keep = 1.0 / (1.0 - p)
    args = (rt.flat(out), rt.flat(mask), rt.flat(inp), rt.flat(rand), float(p), keep)
    rt.launch(_dropout_forward_kernel, rt.blocks_for(n), BLOCK, *args)


def dropout_backward(dinp, dout, mask):
    """WRITES dinp = dout * mask, any shape."""
    rt.require_cuda()
    _elementwise(_mul_kernel, dinp, dout, mask)


def softmax_forward(out, inp):
    """WRITES out (N, V) = softmax of each row of inp (N, V), max-subtracted, summed in float64."""
    rt.require_cuda()
    rt.launch(_softmax_kernel(out.dtype), inp.shape[0], BLOCK, out, inp)
