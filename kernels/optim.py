"""AdamW (PyTorch semantics) and gradient-norm helpers over flat parameter vectors."""

import math

import numpy as np
from numba import njit, prange

from .flags import CHUNK, JIT, parallel_kernel


@parallel_kernel()
def grad_norm(grads):
    """sqrt(sum g^2) of the flat grads (P,), accumulated in float64."""
    n = grads.shape[0]
    total = 0.0
    for i in prange(n):
        g = np.float64(grads[i])  # float64 before squaring (numba's float() keeps float32)
        total += g * g
    return math.sqrt(total)


@parallel_kernel()
def scale_inplace(x, s):
    """x (P,) *= s (gradient clipping)."""
    n = x.shape[0]
    for i in prange(n):
        x[i] = x[i] * s


@njit(**JIT)
def _adamw_chunk(p, g, m, v, beta1, beta2, step_size, inv_sqrt_bc2, eps):
    """The Adam part of the update on 1-D contiguous slices (so LLVM vectorises it)."""
    for i in range(p.shape[0]):
        gi = g[i]
        mi = beta1 * m[i] + (1.0 - beta1) * gi
        vi = beta2 * v[i] + (1.0 - beta2) * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] = p[i] - step_size * mi / (math.sqrt(vi) * inv_sqrt_bc2 + eps)


@njit(**JIT)
def _adamw_span(params, grads, m, v, lo, hi, n_decay, decay, beta1, beta2, step_size, inv_sqrt_bc2, eps):
    """Weight decay on [lo, min(hi, n_decay)), then the Adam update on [lo, hi)."""
    pd = params[lo : max(lo, min(hi, n_decay))]
    for i in range(pd.shape[0]):
        pd[i] = pd[i] * decay
    _adamw_chunk(params[lo:hi], grads[lo:hi], m[lo:hi], v[lo:hi], beta1, beta2, step_size, inv_sqrt_bc2, eps)


@parallel_kernel()
def adamw_update(params, grads, m, v, lr, beta1, beta2, eps, weight_decay, step, n_decay):
    """WRITES params, m, v (P,): one PyTorch AdamW step (step is 1-based).

    Decoupled weight decay p *= 1 - lr*wd applies to the first n_decay entries only (the flat
    buffer orders decayed 2-D weights first), then the bias-corrected Adam update to all:
    p -= lr/(1-b1^step) * m / (sqrt(v)/sqrt(1-b2^step) + eps), as torch.optim.AdamW computes it.
    """
    n = params.shape[0]
    bc1 = 1.0 - beta1**step
    bc2 = 1.0 - beta2**step
    step_size = lr / bc1
    inv_sqrt_bc2 = 1.0 / math.sqrt(bc2)
    decay = 1.0 - lr * weight_decay
    for ci in prange((n + CHUNK - 1) // CHUNK):
        lo = ci * CHUNK
        hi = min(lo + CHUNK, n)
        _adamw_span(params, grads, m, v, lo, hi, n_decay, decay, beta1, beta2, step_size, inv_sqrt_bc2, eps)
