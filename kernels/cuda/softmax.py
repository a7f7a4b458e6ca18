"""Row-wise softmax on the GPU: one block per row, max-subtracted, the normaliser summed in float64."""

import math

import numpy as np

from . import _runtime as rt
from ._runtime import BLOCK, block_max, block_sum, cuda


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


def softmax_forward(out, inp):
    """WRITES out (N, V) = softmax of each row of inp (N, V), max-subtracted, summed in float64."""
    rt.require_cuda()
    rt.launch(_softmax_kernel(out.dtype), inp.shape[0], BLOCK, out, inp)
