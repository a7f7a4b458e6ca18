"""Fused causal multi-head self-attention (scores, masked softmax, weighted values) per (b, head).

Each (b, head) is independent and owns disjoint slices of every output, so the kernels prange
over B*NH. The inner loops are shaped for LLVM's vectoriser:
- scores q_t . k_s run over key positions s with K (or V) transposed into a small per-(b, head)
  scratch (HS, T): a multiply-add over s instead of a short dot product over HS per (t, s)
  pair, whose horizontal reductions made the naive loop 3-5x slower;
- weighted sums of rows (att @ v and the gradients dq, dk, dv) add four rows per pass, so the
  destination row is loaded and stored a quarter as often.
Rows are taken as 1-D slices of the C-contiguous arrays: numba then knows they are contiguous.
"""

import math

import numpy as np
from numba import njit, prange

from .activation import exp_f32
from .flags import JIT, JIT_PARALLEL


@njit(**JIT)
def _scores(row, qt, kT, n, zero):
    """WRITES row[:n] = qt (HS,) . kT[:, :n] (HS, T), four rows of kT per pass over row."""
    HS = qt.shape[0]
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


@njit(**JIT)
def _weighted_rows(dst, w, x, b, off, j0, j1, zero):
    """WRITES dst (HS,) = sum over j0 <= j < j1 of w[j] * x[b, j, off:off+HS]."""
    HS = dst.shape[0]
    for d in range(HS):
        dst[d] = zero
    j = j0
    while j + 4 <= j1:
        w0 = w[j]
        w1 = w[j + 1]
        w2 = w[j + 2]
        w3 = w[j + 3]
        r0 = x[b, j, off : off + HS]
        r1 = x[b, j + 1, off : off + HS]
        r2 = x[b, j + 2, off : off + HS]
        r3 = x[b, j + 3, off : off + HS]
        for d in range(HS):
            dst[d] += w0 * r0[d] + w1 * r1[d] + w2 * r2[d] + w3 * r3[d]
        j += 4
    while j < j1:
        w0 = w[j]
        r0 = x[b, j, off : off + HS]
        for d in range(HS):
            dst[d] += w0 * r0[d]
        j += 1


@njit(**JIT)
def _softmax_causal_row(row, n, fast):
    """row[:n] = softmax(row[:n]) (normaliser summed in float64), row[n:] = 0."""
    # max of the stored (rounded) scores, so the largest gets exp(0) = 1 exactly
    maxv = row[0]
    for s in range(1, n):
        maxv = row[s] if row[s] > maxv else maxv
    if fast:
        for s in range(n):
            row[s] = exp_f32(row[s] - maxv)
    else:
        for s in range(n):
            row[s] = math.exp(row[s] - maxv)
    # a separate float64 sum: folded into the exp loop it halves that loop's vector width
    total = 0.0
    for s in range(n):
        total += row[s]
    inv = 1.0 / total
    for s in range(n):
        row[s] = row[s] * inv
    for s in range(n, row.shape[0]):
        row[s] = 0.0


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
        qo = h * HS  # column offsets of this head's q, k, v
        ko = C + h * HS
        vo = 2 * C + h * HS
        # per-(b, head) scratch: K transposed and pre-multiplied by the score scale
        kT = np.empty((HS, T), qkv.dtype)
        for s in range(T):
            for d in range(HS):
                kT[d, s] = qkv[b, s, ko + d] * scale
        for t in range(T):
            row = att[b, h, t]
            n = t + 1
            _scores(row, qkv[b, t, qo : qo + HS], kT, n, zero)
            if keep_pre:
                prow = pre[b, h, t]
                for s in range(n):
                    prow[s] = row[s]
                for s in range(n, T):
                    prow[s] = ninf
            _softmax_causal_row(row, n, fast)
            _weighted_rows(out[b, t, qo : qo + HS], row, qkv, b, vo, 0, n, zero)


@njit(**JIT_PARALLEL)
def attention_backward(dqkv, datt, dout, qkv, att, n_head):
    """WRITES dqkv (B, T, 3C) from dout (B, T, C) and the saved att; datt (B, NH, T, T) is scratch.

    Two passes per (b, head): by query row t, datt = dout_t . v_s and the softmax backward give
    dpre (kept in datt) and dq_t = sum_s dpre[t, s] k_s; then by key row s,
    dk_s = sum_{t>=s} dpre[t, s] q_t and dv_s = sum_{t>=s} att[t, s] dout_t.
    """
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
        for t in range(T):
            n = t + 1
            arow = a[t]
            drow = da[t]
            # through out = att @ v: datt[t, s] = dout_t . v_s
            _scores(drow, dout[b, t, qo : qo + HS], vT, n, zero)
            # through the softmax: dpre = att * (datt - sum(att * datt)), summed in float64
            inner = 0.0
            for s in range(n):
                inner += arow[s] * drow[s]
            for s in range(n):
                drow[s] = arow[s] * (drow[s] - inner) * scale
            for s in range(n, T):
                drow[s] = zero
            # through the scores q_t . k_s: dq_t = sum_s dpre[t, s] k_s
            _weighted_rows(dqkv[b, t, qo : qo + HS], drow, qkv, b, ko, 0, n, zero)
        for s in range(T):
            # columns of dpre and att: sums over the queries t >= s that saw key s
            _weighted_rows(dqkv[b, s, ko : ko + HS], da[:, s], qkv, b, qo, s, T, zero)
            _weighted_rows(dqkv[b, s, vo : vo + HS], a[:, s], dout, b, qo, s, T, zero)
