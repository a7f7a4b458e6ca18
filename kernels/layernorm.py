"""LayerNorm over the last axis of (N, C) rows, saving mean and rstd for the backward pass."""

import math

import numpy as np
from numba import njit, prange

from .flags import JIT, parallel_kernel


@njit(inline="always", **JIT)
def _forward_row(out, inp, weight, bias, eps):
    """WRITES out (C,) = the normalised row inp (C,); returns (mean, rstd)."""
    C = inp.shape[0]
    # mean and variance accumulate in float64 (two passes: no cancellation in E[x^2]-E[x]^2).
    m = 0.0
    for c in range(C):
        m += np.float64(inp[c])
    m = m / C
    v = 0.0
    for c in range(C):
        d = np.float64(inp[c]) - m
        v += d * d
    v = v / C
    s = 1.0 / math.sqrt(v + eps)
    for c in range(C):
        out[c] = (inp[c] - m) * s * weight[c] + bias[c]
    return m, s


@njit(inline="always", **JIT)
def _backward_row(dinp, dout, inp, weight, m, s):
    """ADDS the row's input gradient into dinp (C,)."""
    C = inp.shape[0]
    dnorm_mean = 0.0
    dnorm_norm_mean = 0.0
    for c in range(C):
        norm = (inp[c] - m) * s
        dnorm = weight[c] * dout[c]
        dnorm_mean += dnorm
        dnorm_norm_mean += dnorm * norm
    dnorm_mean = dnorm_mean / C
    dnorm_norm_mean = dnorm_norm_mean / C
    for c in range(C):
        norm = (inp[c] - m) * s
        dnorm = weight[c] * dout[c]
        dinp[c] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s


@parallel_kernel()
def layernorm_forward(out, mean, rstd, inp, weight, bias, eps):
    """WRITES out (N, C), mean (N,), rstd (N,); biased variance, rstd = 1/sqrt(var + eps)."""
    N, C = inp.shape
    for i in prange(N):
        mean[i], rstd[i] = _forward_row(out[i], inp[i], weight, bias, eps)


@parallel_kernel()
def layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd):
    """ADDS into dinp (N, C), dweight (C,), dbias (C,) from dout (N, C) and the saved mean, rstd."""
    N, C = inp.shape
    # rows are independent for dinp
    for i in prange(N):
        _backward_row(dinp[i], dout[i], inp[i], weight, mean[i], rstd[i])
    # dweight and dbias reduce over rows: one serial pass, vectorised over C.
    for i in range(N):
        m = mean[i]
        s = rstd[i]
        for c in range(C):
            dbias[c] += dout[i, c]
            dweight[c] += (inp[i, c] - m) * s * dout[i, c]
