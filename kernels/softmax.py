"""Row-wise softmax, max-subtracted, summed in float64; its row kernel also serves cross-entropy."""

import math

from numba import njit, prange

from .expf import exp_f32
from .flags import JIT, parallel_kernel


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
