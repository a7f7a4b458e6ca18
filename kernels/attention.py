"""Fused causal multi-head self-attention (scores, masked softmax, weighted values) per (b, head)."""

import math

from numba import njit, prange

from .flags import JIT_PARALLEL


@njit(**JIT_PARALLEL)
def attention_forward(out, att, preatt, qkv, n_head):
    """WRITES out (B, T, C), att (B, NH, T, T) and, if preatt.size > 0, preatt (B, NH, T, T).

    qkv (B, T, 3C) holds [q | k | v]; head h uses columns h*HS:(h+1)*HS of each third.
    att[b, h, t, s] = softmax_s(q_t . k_s / sqrt(HS)) for s <= t, exactly 0 above the diagonal;
    preatt holds the raw scaled scores with -inf above the diagonal (for display).
    """
    B, T, C3 = qkv.shape
    C = C3 // 3
    NH = n_head
    HS = C // NH
    scale = 1.0 / math.sqrt(HS)
    keep_pre = preatt.size > 0
    # any size-0 array means "no preatt"; a 4-D view of either keeps one compiled type
    if keep_pre:
        pre = preatt.reshape((B, NH, T, T))
    else:
        pre = preatt.reshape((0, 0, 0, 0))
    ninf = -math.inf
    for bh in prange(B * NH):
        b = bh // NH
        h = bh % NH
        qo = h * HS
        ko = C + h * HS
        vo = 2 * C + h * HS
        for t in range(T):
            # scaled scores and their running max
            maxv = ninf
            for s in range(t + 1):
                dot = qkv[b, t, qo] * qkv[b, s, ko]
                for d in range(1, HS):
                    dot += qkv[b, t, qo + d] * qkv[b, s, ko + d]
                att[b, h, t, s] = dot * scale
                # max of the stored (rounded) scores, so the largest gets exp(0) = 1 exactly
                score = att[b, h, t, s]
                if keep_pre:
                    pre[b, h, t, s] = score
                if score > maxv:
                    maxv = score
            # softmax; the normaliser is summed in float64
            total = 0.0
            for s in range(t + 1):
                e = math.exp(att[b, h, t, s] - maxv)
                att[b, h, t, s] = e
                total += e
            inv = 1.0 / total
            for s in range(t + 1):
                att[b, h, t, s] = att[b, h, t, s] * inv
            for s in range(t + 1, T):
                att[b, h, t, s] = 0.0
            if keep_pre:
                for s in range(t + 1, T):
                    pre[b, h, t, s] = ninf
            # weighted sum of values
            for d in range(HS):
                out[b, t, qo + d] = 0.0
            for s in range(t + 1):
                a = att[b, h, t, s]
                for d in range(HS):
                    out[b, t, qo + d] += a * qkv[b, s, vo + d]


@njit(**JIT_PARALLEL)
def attention_backward(dqkv, datt, dout, qkv, att, n_head):
    """WRITES dqkv (B, T, 3C) from dout (B, T, C) and the saved att; datt (B, NH, T, T) is scratch."""
    B, T, C3 = qkv.shape
    C = C3 // 3
    NH = n_head
    HS = C // NH
    scale = 1.0 / math.sqrt(HS)
    for bh in prange(B * NH):
        b = bh // NH
        h = bh % NH
        qo = h * HS
        ko = C + h * HS
        vo = 2 * C + h * HS
        # this (b, h) owns these column slices of dqkv[b]: zero them, then accumulate
        for t in range(T):
            for d in range(HS):
                dqkv[b, t, qo + d] = 0.0
                dqkv[b, t, ko + d] = 0.0
                dqkv[b, t, vo + d] = 0.0
        for t in range(T):
            # through out = att @ v: datt = dout . v, dv += att * dout
            for s in range(t + 1):
                a = att[b, h, t, s]
                dot = dout[b, t, qo] * qkv[b, s, vo]
                for d in range(1, HS):
                    dot += dout[b, t, qo + d] * qkv[b, s, vo + d]
                datt[b, h, t, s] = dot
                for d in range(HS):
                    dqkv[b, s, vo + d] += a * dout[b, t, qo + d]
            # through the softmax: dpre = att * (datt - sum(att * datt)), summed in float64
            inner = 0.0
            for s in range(t + 1):
                inner += att[b, h, t, s] * datt[b, h, t, s]
            for s in range(t + 1):
                datt[b, h, t, s] = att[b, h, t, s] * (datt[b, h, t, s] - inner) * scale
            for s in range(t + 1, T):
                datt[b, h, t, s] = 0.0
            # through the scaled scores q_t . k_s
            for s in range(t + 1):
                g = datt[b, h, t, s]
                for d in range(HS):
                    dqkv[b, t, qo + d] += g * qkv[b, s, ko + d]
                    dqkv[b, s, ko + d] += g * qkv[b, t, qo + d]
