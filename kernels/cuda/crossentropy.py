"""Softmax cross-entropy over (N, V) logits with integer targets, and top-1 accuracy, on the GPU."""

import math

import numpy as np

from . import _runtime as rt
from ._runtime import BLOCK, block_max, block_sum, cuda


def _make_crossentropy_forward(dt):
    @cuda.jit
    def crossentropy_forward_kernel(losses, probs, logits, targets, bad_target):
        """Block i: probs row i and losses[i] = logsumexp - logits[target]; a bad target gives NaN."""
        N, V = logits.shape
        i = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        buf = cuda.shared.array(BLOCK, np.float64)
        best = -math.inf
        for j in range(tid, V, BLOCK):
            if logits[i, j] > best:
                best = logits[i, j]
        maxv = dt(block_max(buf, tid, best))  # exact: the max is one of the row's values
        part = 0.0
        for j in range(tid, V, BLOCK):
            e = math.exp(logits[i, j] - maxv)
            probs[i, j] = e
            part += e
        total = block_sum(buf, tid, part)
        inv = dt(1.0 / total)
        for j in range(tid, V, BLOCK):
            probs[i, j] = probs[i, j] * inv
        if tid == 0:
            t = targets[i]
            if t < 0 or t >= V:
                bad_target[0] = 1  # never index outside the row; the host raises IndexError
                losses[i] = math.nan
            else:
                # stable: -log(p_target) = log(sum exp(l - max)) + max - l_target, never log(0)
                losses[i] = math.log(total) + maxv - logits[i, t]

    return crossentropy_forward_kernel


_crossentropy_forward_kernel = rt.by_dtype(_make_crossentropy_forward)


@cuda.jit
def _crossentropy_backward_kernel(dlogits, probs, targets, scale, bad_target):
    """One thread per (i, j): (p - onehot) * scale."""
    N, V = probs.shape
    k = cuda.grid(1)
    if k < N * V:
        i = k // V
        j = k % V
        t = targets[i]
        if t < 0 or t >= V:
            bad_target[0] = 1
        if j == t:
            # (p - 1) * scale, not p * scale - scale: exact zero when p rounds to 1
            dlogits[i, j] = (probs[i, j] - 1.0) * scale
        else:
            dlogits[i, j] = probs[i, j] * scale


@cuda.jit
def _count_correct_kernel(count, logits, targets):
    """Block i: argmax of row i (the first maximum, as a left-to-right `>` scan finds it)."""
    N, V = logits.shape
    i = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    vals = cuda.shared.array(BLOCK, np.float64)
    idxs = cuda.shared.array(BLOCK, np.int32)
    # each thread scans its strided columns; NaN never wins a `>`, and -1 means "no candidate"
    best_v = -math.inf
    best_i = -1
    for j in range(tid, V, BLOCK):
        x = logits[i, j]
        if best_i < 0:
            if x == x:
                best_v = x
                best_i = j
        elif x > best_v:
            best_v = x
            best_i = j
    vals[tid] = best_v
    idxs[tid] = best_i
    cuda.syncthreads()
    stride = BLOCK // 2
    while stride > 0:
        if tid < stride:
            oi = idxs[tid + stride]
            if oi >= 0:
                mi = idxs[tid]
                ov = vals[tid + stride]
                if mi < 0 or ov > vals[tid] or (ov == vals[tid] and oi < mi):
                    vals[tid] = ov
                    idxs[tid] = oi
        cuda.syncthreads()
        stride //= 2
    if tid == 0:
        best = idxs[0]
        first = logits[i, 0]
        if best < 0 or first != first:
            best = 0  # the CPU scan starts at column 0: a NaN there is never beaten
        if best == targets[i]:
            cuda.atomic.add(count, 0, 1)


def _raise_if_bad(bad_target):
    if rt.to_host(bad_target)[0] != 0:
        raise IndexError("cross-entropy: target out of range")


def crossentropy_forward(losses, probs, logits, targets):
    """WRITES probs (N, V) = softmax(logits), losses (N,) = logsumexp(logits) - logits[target].

    Raises IndexError for a target outside [0, V) (checked on the device: one 4-byte sync).
    """
    rt.require_cuda()
    N, V = logits.shape
    bad_target = rt.device_zeros(1, np.int32)
    rt.launch(_crossentropy_forward_kernel(probs.dtype), N, BLOCK, losses, probs, logits, targets, bad_target)
    _raise_if_bad(bad_target)


def crossentropy_backward(dlogits, probs, targets, scale):
    """WRITES dlogits (N, V) = (probs - onehot(targets)) * scale; scale = 1/N for a mean loss."""
    rt.require_cuda()
    N, V = probs.shape
    bad_target = rt.device_zeros(1, np.int32)
    n = N * V
    args = (dlogits, probs, targets, float(scale), bad_target)
    rt.launch(_crossentropy_backward_kernel, rt.blocks_for(n), BLOCK, *args)
    _raise_if_bad(bad_target)


def count_correct(logits, targets):
    """Number of rows of logits (N, V) whose argmax (the first maximum) equals the target."""
    rt.require_cuda()
    N, V = logits.shape
    count = rt.device_zeros(1, np.int32)
    rt.launch(_count_correct_kernel, N, BLOCK, count, logits, targets)
    return int(rt.to_host(count)[0])
