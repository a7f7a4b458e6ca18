"""AdamW (PyTorch semantics) and gradient-norm helpers over flat parameter vectors, on the GPU."""

import math

import numpy as np

from . import _runtime as rt
from ._runtime import BLOCK, MAX_REDUCE_BLOCKS, block_sum, cuda


@cuda.jit
def _sumsq_partial_kernel(partial, grads):
    """Block k WRITES partial[k] = sum of g^2 over its grid-stride share, in float64."""
    n = grads.shape[0]
    tid = cuda.threadIdx.x
    buf = cuda.shared.array(BLOCK, np.float64)
    part = 0.0
    for i in range(cuda.blockIdx.x * BLOCK + tid, n, cuda.gridDim.x * BLOCK):
        g = np.float64(grads[i])  # float64 before squaring
        part += g * g
    total = block_sum(buf, tid, part)
    if tid == 0:
        partial[cuda.blockIdx.x] = total


@cuda.jit
def _sum_kernel(result, partial):
    """One block WRITES result[0] = sum(partial)."""
    tid = cuda.threadIdx.x
    buf = cuda.shared.array(BLOCK, np.float64)
    part = 0.0
    for i in range(tid, partial.shape[0], BLOCK):
        part += partial[i]
    total = block_sum(buf, tid, part)
    if tid == 0:
        result[0] = total


@cuda.jit
def _scale_kernel(x, s):
    i = cuda.grid(1)
    if i < x.shape[0]:
        x[i] = x[i] * s


@cuda.jit
def _adamw_kernel(
    params, grads, m, v, beta1, one_m_beta1, beta2, one_m_beta2, eps, step_size, inv_sqrt_bc2, decay, n_decay
):
    """One thread per parameter; the scalars arrive in the parameters' dtype."""
    i = cuda.grid(1)
    if i < params.shape[0]:
        if i < n_decay:
            params[i] = params[i] * decay
        g = grads[i]
        mi = beta1 * m[i] + one_m_beta1 * g
        vi = beta2 * v[i] + one_m_beta2 * g * g
        m[i] = mi
        v[i] = vi
        params[i] = params[i] - step_size * mi / (math.sqrt(vi) * inv_sqrt_bc2 + eps)


def grad_norm(grads):
    """sqrt(sum g^2) of the flat grads (P,), accumulated in float64; a fixed grid keeps it deterministic."""
    rt.require_cuda()
    n = grads.shape[0]
    if n == 0:
        return 0.0
    nblocks = min(rt.blocks_for(n), MAX_REDUCE_BLOCKS)
    partial = rt.device_zeros(nblocks, np.float64)
    result = rt.device_zeros(1, np.float64)
    rt.launch(_sumsq_partial_kernel, nblocks, BLOCK, partial, grads)
    rt.launch(_sum_kernel, 1, BLOCK, result, partial)
    return math.sqrt(float(rt.to_host(result)[0]))


def scale_inplace(x, s):
    """x (P,) *= s (gradient clipping)."""
    rt.require_cuda()
    rt.launch(_scale_kernel, rt.blocks_for(x.shape[0]), BLOCK, x, x.dtype.type(s))


def adamw_update(params, grads, m, v, lr, beta1, beta2, eps, weight_decay, step, n_decay):
    """WRITES params, m, v (P,): one PyTorch AdamW step (step is 1-based).

    Decoupled weight decay p *= 1 - lr*wd applies to the first n_decay entries only (the flat
    buffer orders decayed 2-D weights first), then the bias-corrected Adam update to all.
    """
    rt.require_cuda()
    n = params.shape[0]
    # the step-only scalars are computed once, on the host, in float64 as the CPU kernel does
    bc1 = 1.0 - beta1**step
    bc2 = 1.0 - beta2**step
    step_size = lr / bc1
    inv_sqrt_bc2 = 1.0 / math.sqrt(bc2)
    decay = 1.0 - lr * weight_decay
    # scalars in the parameters' dtype: float32 training runs float32 arithmetic, like PyTorch
    cast = params.dtype.type
    hyper = (beta1, 1.0 - beta1, beta2, 1.0 - beta2, eps, step_size, inv_sqrt_bc2, decay)
    args = (*[cast(x) for x in hyper], int(n_decay))
    rt.launch(_adamw_kernel, rt.blocks_for(n), BLOCK, params, grads, m, v, *args)
