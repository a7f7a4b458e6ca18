"""Dense layers and the tied LM head: BLAS through np.matmul (it releases the GIL), bias in njit."""

import numpy as np
from numba import njit

from .flags import JIT


@njit(**JIT)
def _add_bias(out, bias):
    """out (N, OC) += bias (OC,)."""
    N, OC = out.shape
    for i in range(N):
        for o in range(OC):
            out[i, o] += bias[o]


@njit(**JIT)
def _bias_grad(dbias, dout):
    """WRITES dbias (OC,) = dout (N, OC).sum(0), row by row so the inner loop vectorises."""
    N, OC = dout.shape
    for o in range(OC):
        dbias[o] = 0.0
    for i in range(N):
        for o in range(OC):
            dbias[o] += dout[i, o]


def matmul_forward(out, inp, weight, bias):
    """WRITES out (N, OC) = inp (N, C) @ weight (C, OC) + bias (OC,); bias of shape (0,) means none."""
    np.matmul(inp, weight, out=out)
    if bias.shape[0] > 0:
        _add_bias(out, bias)


def matmul_backward(dinp, dweight, dbias, dout, inp, weight):
    """WRITES dinp = dout @ weight.T, dweight = inp.T @ dout, dbias = dout.sum(0) (skipped if (0,)).

    Unlike llm.c these overwrite rather than add: every weight is used exactly once per step,
    so there is nothing to accumulate and the gradient buffers need no zeroing first.
    """
    np.matmul(dout, weight.T, out=dinp)
    np.matmul(inp.T, dout, out=dweight)
    if dbias.shape[0] > 0:
        _bias_grad(dbias, dout)


def lm_head_forward(out, inp, wte):
    """WRITES out (N, V) = inp (N, C) @ wte (V, C).T."""
    np.matmul(inp, wte.T, out=out)


def lm_head_backward(dinp, dwte, dlogits, inp, wte):
    """WRITES dinp (N, C) = dlogits @ wte, dwte (V, C) = dlogits.T @ inp; encoder_backward then ADDS."""
    np.matmul(dlogits, wte, out=dinp)
    np.matmul(dlogits.T, inp, out=dwte)
