"""GELU (tanh form) on the GPU, forward and backward, elementwise over any shape.

Arithmetic runs in the data's dtype (float32 data, float32 math: float64 is 2x to 64x slower on
GPUs); exp's argument is capped so that it stays finite.
"""

import math

from ..gelu import EXP_MAX, GELU_CUBIC, GELU_SCALE
from . import _runtime as rt
from ._runtime import cuda, elementwise

EXP_MAX_F32 = 80.0  # exp(80) ~ 5.5e34 is finite in float32 (exp(89) is not)


def exp_cap(dt):
    """Largest argument passed to exp: it stays finite (beyond it gelu(x) is 0 anyway)."""
    return EXP_MAX_F32 if dt.bitwidth == 32 else EXP_MAX


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


def gelu_forward(out, inp):
    """WRITES out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), any shape."""
    rt.require_cuda()
    elementwise(_gelu_forward_kernel(out.dtype), out, inp)


def gelu_backward(dinp, inp, dout):
    """WRITES dinp = gelu'(inp) * dout, any shape."""
    rt.require_cuda()
    elementwise(_gelu_backward_kernel(dinp.dtype), dinp, inp, dout)


def gelu_backward_inplace(dout, inp):
    """dout *= gelu'(inp), any shape (each GPU thread reads its element before writing it)."""
    gelu_backward(dout, inp, dout)
