"""Softmax cross-entropy over (N, V) logits with integer targets, and top-1 accuracy."""

import math

from numba import njit, prange

from .flags import JIT, parallel_kernel
from .softmax import _softmax_row


@njit(**JIT)
def _crossentropy_row(loss_out, i, p, x, target):
    """One row: p = softmax(x), loss_out[i] = logsumexp(x) - x[target]."""
    maxv, total = _softmax_row(p, x)
    # stable: -log(p_target) = log(sum exp(l - max)) + max - l_target, never log(0)
    loss_out[i] = math.log(total) + maxv - x[target]


@parallel_kernel(work_arg=1)
def crossentropy_forward(losses, probs, logits, targets):
    """WRITES probs (N, V) = softmax(logits), losses (N,) = logsumexp(logits) - logits[target]."""
    N, V = logits.shape
    # numba does not bounds-check: a bad target would read and write foreign memory.
    for i in range(N):
        if targets[i] < 0 or targets[i] >= V:
            raise IndexError("crossentropy_forward: target out of range")
    for i in prange(N):
        _crossentropy_row(losses, i, probs[i], logits[i], targets[i])


@parallel_kernel()
def crossentropy_backward(dlogits, probs, targets, scale):
    """WRITES dlogits (N, V) = (probs - onehot(targets)) * scale; scale = 1/N for a mean loss."""
    N, V = probs.shape
    for i in range(N):
        if targets[i] < 0 or targets[i] >= V:
            raise IndexError("crossentropy_backward: target out of range")
    for i in prange(N):
        _crossentropy_grad_row(dlogits[i], probs[i], targets[i], scale)


@njit(**JIT)
def _crossentropy_grad_row(d, p, t, scale):
    """One row: d = (p - onehot(t)) * scale."""
    for j in range(p.shape[0]):
        d[j] = p[j] * scale
    # (p - 1) * scale, not p * scale - scale: exact zero when p rounds to 1
    d[t] = (p[t] - 1.0) * scale


@njit(**JIT)
def count_correct(logits, targets):
    """Number of rows of logits (N, V) whose argmax (the first maximum) equals the target."""
    N, V = logits.shape
    correct = 0
    for i in range(N):
        best = 0
        maxv = logits[i, 0]
        for j in range(1, V):
            if logits[i, j] > maxv:
                maxv = logits[i, j]
                best = j
        if best == targets[i]:
            correct += 1
    return correct
