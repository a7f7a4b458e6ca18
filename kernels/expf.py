"""A vectorisable float32 exp for the softmax-like kernels (GELU, softmax, attention)."""

import numpy as np
from numba import njit
from numba.core import types
from numba.extending import intrinsic, overload

from .flags import JIT

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
