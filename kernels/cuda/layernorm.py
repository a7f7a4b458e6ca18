"""LayerNorm over the last axis of (N, C) rows on the GPU: one block per row."""

import math

import numpy as np

from . import _runtime as rt
from ._runtime import BLOCK, block_sum, cuda


@cuda.jit
def _layernorm_forward_kernel(out, mean, rstd, inp, weight, bias, eps):
    """Block i normalises row i; mean and variance are two float64 passes like the CPU kernel."""
    N, C = inp.shape
    i = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    buf = cuda.shared.array(BLOCK, np.float64)
    part = 0.0
    for c in range(tid, C, BLOCK):
        part += np.float64(inp[i, c])
    m = block_sum(buf, tid, part) / C
    part = 0.0
    for c in range(tid, C, BLOCK):
        d = np.float64(inp[i, c]) - m
        part += d * d
    v = block_sum(buf, tid, part) / C
    s = 1.0 / math.sqrt(v + eps)
    for c in range(tid, C, BLOCK):
        out[i, c] = (inp[i, c] - m) * s * weight[c] + bias[c]
    if tid == 0:
        mean[i] = m
        rstd[i] = s


@cuda.jit
def _layernorm_backward_dinp_kernel(dinp, dout, inp, weight, mean, rstd):
    """Block i adds row i of dinp: two block reductions, then the elementwise formula."""
    N, C = inp.shape
    i = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    buf = cuda.shared.array(BLOCK, np.float64)
    m = mean[i]
    s = rstd[i]
    part_mean = 0.0
    part_norm = 0.0
    for c in range(tid, C, BLOCK):
        norm = (inp[i, c] - m) * s
        dnorm = weight[c] * dout[i, c]
        part_mean += dnorm
        part_norm += dnorm * norm
    dnorm_mean = block_sum(buf, tid, part_mean) / C
    dnorm_norm_mean = block_sum(buf, tid, part_norm) / C
    for c in range(tid, C, BLOCK):
        norm = (inp[i, c] - m) * s
        dnorm = weight[c] * dout[i, c]
        dinp[i, c] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s


@cuda.jit
def _layernorm_backward_params_kernel(dweight, dbias, dout, inp, mean, rstd):
    """Thread c adds column c of dweight and dbias, rows in order (deterministic, no atomics)."""
    N, C = inp.shape
    c = cuda.grid(1)
    if c < C:
        dw = dweight[c]
        db = dbias[c]
        for i in range(N):
            db += dout[i, c]
            dw += (inp[i, c] - mean[i]) * rstd[i] * dout[i, c]
        dweight[c] = dw
        dbias[c] = db


def layernorm_forward(out, mean, rstd, inp, weight, bias, eps):
    """WRITES out (N, C), mean (N,), rstd (N,); biased variance, rstd = 1/sqrt(var + eps)."""
    rt.require_cuda()
    N, C = inp.shape
    rt.launch(_layernorm_forward_kernel, N, BLOCK, out, mean, rstd, inp, weight, bias, float(eps))


def layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd):
    """ADDS into dinp (N, C), dweight (C,), dbias (C,) from dout (N, C) and the saved mean, rstd."""
    rt.require_cuda()
    N, C = inp.shape
    rt.launch(_layernorm_backward_dinp_kernel, N, BLOCK, dinp, dout, inp, weight, mean, rstd)
    rt.launch(_layernorm_backward_params_kernel, rt.blocks_for(C), BLOCK, dweight, dbias, dout, inp, mean, rstd)
