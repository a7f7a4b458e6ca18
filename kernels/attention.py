"""Fused causal multi-head self-attention (scores, masked softmax, weighted values) per (b, head).

Each (b, head) is independent and owns disjoint slices of every output, so the kernels prange
over B*NH. Inner loops run over key positions s with K (or V) transposed into a small
per-(b, head) scratch (HS, T): a vectorised multiply-add over s instead of a short dot product
over HS per (t, s) pair, whose horizontal reductions made the naive loop 3-5x slower.
"""

import math

import numpy as np
from numba import njit, prange

from .activation import exp_f32
from .flags import JIT, JIT_PARALLEL


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
    zero = qkv.dtype.type(0)
    fast = qkv.itemsize == 4  # float32: vectorised exp_f32
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
        # column offsets of this head's q, k, v; rows are taken as 1-D slices of C-contiguous
        # arrays (numba then knows they are contiguous and vectorises over them)
        qo = h * HS
        ko = C + h * HS
        vo = 2 * C + h * HS
        a = att[b, h]  # (T, T)
        kT = np.empty((HS, T), qkv.dtype)  # per-(b, head) scratch
        for s in range(T):
            for d in range(HS):
                kT[d, s] = qkv[b, s, ko + d]
        for t in range(T):
            row = a[t]
            n = t + 1
            _scores(row, qkv[b, t, qo : qo + HS], kT, n, HS, zero)
            for s in range(n):
                row[s] = row[s] * scale
            # max of the stored (rounded) scores, so the largest gets exp(0) = 1 exactly
            maxv = row[0]
            for s in range(1, n):
                maxv = row[s] if row[s] > maxv else maxv
            if keep_pre:
                prow = pre[b, h, t]
                for s in range(n):
                    prow[s] = row[s]
                for s in range(n, T):
                    prow[s] = ninf
            # softmax; the normaliser is summed in float64
            total = 0.0
            if fast:
                for s in range(n):
                    e = exp_f32(row[s] - maxv)
                    row[s] = e
                    total += e
            else:
                for s in range(n):
                    e = math.exp(row[s] - maxv)
                    row[s] = e
                    total += e
            inv = 1.0 / total
            for s in range(n):
                row[s] = row[s] * inv
            for s in range(n, T):
                row[s] = zero
            # weighted sum of values
            ot = out[b, t, qo : qo + HS]
            for d in range(HS):
                ot[d] = zero
            for s in range(n):
                w = row[s]
                vs = qkv[b, s, vo : vo + HS]
                for d in range(HS):
                    ot[d] += w * vs[d]


@njit(**JIT)
def _scores(row, qt, kT, n, HS, zero):
    """WRITES row[:n] = qt (HS,) . kT[:, :n] (HS, T), four rows of kT per pass over row."""
    for s in range(n):
        row[s] = zero
    d = 0
    while d + 4 <= HS:
        q0 = qt[d]
        q1 = qt[d + 1]
        q2 = qt[d + 2]
        q3 = qt[d + 3]
        k0 = kT[d]
        k1 = kT[d + 1]
        k2 = kT[d + 2]
        k3 = kT[d + 3]
        for s in range(n):
            row[s] += q0 * k0[s] + q1 * k1[s] + q2 * k2[s] + q3 * k3[s]
        d += 4
    while d < HS:
        q0 = qt[d]
        k0 = kT[d]
        for s in range(n):
            row[s] += q0 * k0[s]
        d += 1


@njit(**JIT_PARALLEL)
def attention_backward(dqkv, datt, dout, qkv, att, n_head):
    """WRITES dqkv (B, T, 3C) from dout (B, T, C) and the saved att; datt (B, NH, T, T) is scratch."""
    B, T, C3 = qkv.shape
    C = C3 // 3
    NH = n_head
    HS = C // NH
    scale = 1.0 / math.sqrt(HS)
    zero = qkv.dtype.type(0)
    for bh in prange(B * NH):
        b = bh // NH
        h = bh % NH
        qo = h * HS
        ko = C + h * HS
        vo = 2 * C + h * HS
        a = att[b, h]
        da = datt[b, h]
        vT = np.empty((HS, T), qkv.dtype)  # per-(b, head) scratch
        for s in range(T):
            for d in range(HS):
                vT[d, s] = qkv[b, s, vo + d]
        # this (b, h) owns these column slices of dqkv[b]: zero them, then accumulate
        for t in range(T):
            for d in range(HS):
                dqkv[b, t, qo + d] = zero
                dqkv[b, t, ko + d] = zero
                dqkv[b, t, vo + d] = zero
        for t in range(T):
            n = t + 1
            arow = a[t]
            drow = da[t]
            dot = dout[b, t, qo : qo + HS]
            # through out = att @ v: datt = dout . v, dv += att * dout
            _scores(drow, dot, vT, n, HS, zero)
            for s in range(n):
                w = arow[s]
                dvs = dqkv[b, s, vo : vo + HS]
                for d in range(HS):
                    dvs[d] += w * dot[d]
            # through the softmax: dpre = att * (datt - sum(att * datt)), summed in float64
            inner = 0.0
            for s in range(n):
                inner += arow[s] * drow[s]
            for s in range(n):
                drow[s] = arow[s] * (drow[s] - inner) * scale
            for s in range(n, T):
                drow[s] = zero
            # through the scaled scores q_t . k_s
            qt = qkv[b, t, qo : qo + HS]
            dqt = dqkv[b, t, qo : qo + HS]
            for s in range(n):
                g = drow[s]
                ks = qkv[b, s, ko : ko + HS]
                dks = dqkv[b, s, ko : ko + HS]
                for d in range(HS):
                    dqt[d] += g * ks[d]
                    dks[d] += g * qt[d]
