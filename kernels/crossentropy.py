"""Softmax cross-entropy over (N, V) logits with integer targets, and top-1 accuracy."""

import math

from numba import njit, prange

from .flags import JIT, JIT_PARALLEL


@njit(**JIT)
def _check_targets(targets, V):
    # numba does not bounds-check: a bad target would read and write foreign memory.
    for i in range(targets.shape[0]):
        if targets[i] < 0 or targets[i] >= V:
            raise IndexError("cross-entropy: target out of range")


@njit(**JIT_PARALLEL)
def crossentropy_forward(losses, probs, logits, targets):
    """WRITES probs (N, V) = softmax(logits), losses (N,) = logsumexp(logits) - logits[target]."""
    N, V = logits.shape
    _check_targets(targets, V)
    for i in prange(N):
        maxv = logits[i, 0]
        for j in range(1, V):
            if logits[i, j] > maxv:
                maxv = logits[i, j]
        total = 0.0
        for j in range(V):
            e = math.exp(logits[i, j] - maxv)
            probs[i, j] = e
            total += e
        inv = 1.0 / total
        for j in range(V):
            probs[i, j] = probs[i, j] * inv
        # stable: -log(p_target) = log(sum exp(l - max)) + max - l_target, never log(0)
        losses[i] = math.log(total) + maxv - logits[i, targets[i]]


@njit(**JIT_PARALLEL)
def crossentropy_backward(dlogits, probs, targets, scale):
    """WRITES dlogits (N, V) = (probs - onehot(targets)) * scale; scale = 1/N for a mean loss."""
    N, V = probs.shape
    _check_targets(targets, V)
    for i in prange(N):
        for j in range(V):
            dlogits[i, j] = probs[i, j] * scale
        # (p - 1) * scale, not p * scale - scale: exact zero when p rounds to 1
        t = targets[i]
        dlogits[i, t] = (probs[i, t] - 1.0) * scale


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
