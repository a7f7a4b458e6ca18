"""Causal multi-head self-attention: BLAS for the four products, Numba for the softmax rows.

Each head's q, k, v (and the gradients) are strided views of the (B, T, 3C) buffers whose rows
are contiguous, so np.matmul over the (B, NH) stack hands every (T, HS) block to BLAS without a
copy (row stride 3C as the leading dimension). At GPT sizes the products are most of the work
and BLAS runs them 4-10x faster than the loops Numba compiles from hand-written code; the
softmax and its backward are the only Numba kernels.

Causality: row t of the scores only needs keys s <= t. Queries go in blocks of <= QBLOCK rows, and
a block's products stop at its last key, so at T = 256 about 5/8 of the full T x T work is done
(one block, the full square, when T <= QBLOCK). Entries above the diagonal inside a block are
computed and then zeroed (att) or ignored.
"""

import math

import numpy as np
from numba import njit, prange

from .expf import exp_f32
from .flags import JIT, parallel_kernel

# Query rows per block: smaller skips more of the masked triangle but gives BLAS smaller
# products. Blocks are also kept under OpenBLAS's threading threshold (m*n*k <= 2^18 runs on the
# calling thread): threading each of the B*NH small products hands over between threads ~1000
# times per layer, and at T=256 on 2 busy cores that made attention 7x slower than 1 thread.
QBLOCK = 64
BLAS_SERIAL_MNK = 1 << 18


def _query_block(T, HS):
    """Rows per query block: at most QBLOCK, and block * T * HS <= BLAS_SERIAL_MNK (a multiple of 8)."""
    return max(8, min(QBLOCK, BLAS_SERIAL_MNK // max(T * HS, 1)) // 8 * 8)


def _head_view(x, lo, C, n_head):
    """View (B, NH, T, HS) of the columns lo:lo+C of x (B, T, *): head h is columns lo+h*HS..; no copy."""
    B, T, _ = x.shape
    return x[:, :, lo : lo + C].reshape(B, T, n_head, C // n_head).transpose(0, 2, 1, 3)


@njit(**JIT)
def _softmax_row(row, prow, n, sc, keep_pre):
    """row[:n] holds raw q.k scores: copy them scaled to prow (if keep_pre, -inf after n), then
    WRITES row = the causal softmax, exact zeros after n."""
    zero = row.dtype.type(0)
    if keep_pre:
        for s in range(n):
            prow[s] = row[s] * sc
        for s in range(n, prow.shape[0]):
            prow[s] = -math.inf
    # max of the raw scores: scale > 0, so the scaled maximum gets exp(0) = 1 exactly
    maxv = row[0]
    for s in range(1, n):
        maxv = row[s] if row[s] > maxv else maxv
    shift = maxv * sc
    # the normaliser sums in the row's dtype: in the exp loop it keeps float32 8-wide
    # (a float64 sum halves the width), and 8 partial sums of <= T terms lose < 1e-6
    total = zero
    if row.itemsize == 4:  # float32: vectorised exp_f32
        for s in range(n):
            e = exp_f32(row[s] * sc - shift)
            row[s] = e
            total += e
    else:
        for s in range(n):
            e = math.exp(row[s] * sc - shift)
            row[s] = e
            total += e
    inv = 1.0 / total
    for s in range(n):
        row[s] = row[s] * inv
    for s in range(n, row.shape[0]):
        row[s] = zero


@njit(**JIT)
def _softmax_block(att, pre, b, h, t0, t1, sc, keep_pre):
    for t in range(t0, t1):
        _softmax_row(att[b, h, t], pre[b, h, t] if keep_pre else att[b, h, t, :0], t + 1, sc, keep_pre)


def _rows_work(att, _, t0, t1, *rest):
    """Score entries the query block [t0, t1) touches: B * NH * (t1 - t0) * t1."""
    return att.shape[0] * att.shape[1] * (t1 - t0) * t1


@parallel_kernel(work=_rows_work)
def _softmax_rows(att, pre, t0, t1, scale, keep_pre):
    """Rows t0 <= t < t1 of att (B, NH, T, T) hold raw q.k scores in columns < t1: scale them,
    copy to pre (if keep_pre) with -inf above the diagonal, then WRITES the causal softmax, exact
    zeros above the diagonal."""
    B, NH, T, _ = att.shape
    sc = att.dtype.type(scale)
    for bh in prange(B * NH):
        _softmax_block(att, pre, bh // NH, bh % NH, t0, t1, sc, keep_pre)


@njit(**JIT)
def _softmax_backward_block(datt, att, b, h, t0, t1, sc):
    zero = att.dtype.type(0)
    for t in range(t0, t1):
        arow = att[b, h, t]
        drow = datt[b, h, t]
        n = t + 1
        inner = zero
        for s in range(n):
            inner += arow[s] * drow[s]
        for s in range(n):
            drow[s] = arow[s] * (drow[s] - inner) * sc
        for s in range(n, t1):
            drow[s] = zero


@parallel_kernel(work=_rows_work)
def _softmax_backward_rows(datt, att, t0, t1, scale):
    """Rows t0 <= t < t1 of datt hold dL/datt in columns < t1: WRITES dL/d(raw scores)
    att * (datt - sum(att * datt)) * scale there, zeros above the diagonal."""
    B, NH, T, _ = att.shape
    sc = att.dtype.type(scale)
    for bh in prange(B * NH):
        _softmax_backward_block(datt, att, bh // NH, bh % NH, t0, t1, sc)


def attention_forward(out, att, preatt, qkv, n_head):
    """WRITES out (B, T, C), att (B, NH, T, T) and, if preatt.size > 0, preatt (B, NH, T, T).

    qkv (B, T, 3C) holds [q | k | v]; head h uses columns h*HS:(h+1)*HS of each third.
    att[b, h, t, s] = softmax_s(q_t . k_s / sqrt(HS)) for s <= t, exactly 0 above the diagonal;
    preatt holds the raw scaled scores with -inf above the diagonal (for display).
    """
    B, T, C3 = qkv.shape
    C = C3 // 3
    scale = 1.0 / math.sqrt(C // n_head)
    q, k, v = (_head_view(qkv, i * C, C, n_head) for i in range(3))
    o = _head_view(out, 0, C, n_head)
    keep_pre = preatt.size > 0
    # any size-0 array means "no preatt"; a 4-D view of either keeps one compiled type
    pre = preatt.reshape((B, n_head, T, T)) if keep_pre else att[:0]
    qb = _query_block(T, C // n_head)
    for t0 in range(0, T, qb):
        t1 = min(t0 + qb, T)
        a = att[:, :, t0:t1, :t1]
        np.matmul(q[:, :, t0:t1], k[:, :, :t1].swapaxes(-1, -2), out=a)
        _softmax_rows(att, pre, t0, t1, scale, keep_pre)
        np.matmul(a, v[:, :, :t1], out=o[:, :, t0:t1])


def attention_backward(dqkv, datt, dout, qkv, att, n_head):
    """WRITES dqkv (B, T, 3C) from dout (B, T, C) and the saved att; datt (B, NH, T, T) is scratch.

    By query block: datt = dout_h v_h^T, then the softmax backward turns it into dpre (kept in
    datt), and dq = dpre k. By key block (the queries t >= s that saw key s):
    dk = dpre^T q and dv = att^T dout_h.
    """
    B, T, C3 = qkv.shape
    C = C3 // 3
    scale = 1.0 / math.sqrt(C // n_head)
    q, k, v = (_head_view(qkv, i * C, C, n_head) for i in range(3))
    dq, dk, dv = (_head_view(dqkv, i * C, C, n_head) for i in range(3))
    do = _head_view(dout, 0, C, n_head)
    qb = _query_block(T, C // n_head)
    for t0 in range(0, T, qb):
        t1 = min(t0 + qb, T)
        d = datt[:, :, t0:t1, :t1]
        np.matmul(do[:, :, t0:t1], v[:, :, :t1].swapaxes(-1, -2), out=d)
        _softmax_backward_rows(datt, att, t0, t1, scale)
        np.matmul(d, k[:, :, :t1], out=dq[:, :, t0:t1])
    for s0 in range(0, T, qb):
        s1 = min(s0 + qb, T)
        np.matmul(datt[:, :, s0:, s0:s1].swapaxes(-1, -2), q[:, :, s0:], out=dk[:, :, s0:s1])
        np.matmul(att[:, :, s0:, s0:s1].swapaxes(-1, -2), do[:, :, s0:], out=dv[:, :, s0:s1])


@njit(**JIT)
def attention_forward_fused(out, qkv, n_head):
    """WRITES out (B, T, C) = causal attention of qkv (B, T, 3C), as attention_forward computes it,
    without the (B, NH, T, T) weights (a GPU saves their memory traffic; here one row of scratch)."""
    B, T, C3 = qkv.shape
    C = C3 // 3
    HS = C // n_head
    scale = 1.0 / math.sqrt(HS)
    row = np.empty(T, dtype=np.float64)
    for b in range(B):
        for h in range(n_head):
            qo, ko, vo = h * HS, C + h * HS, 2 * C + h * HS
            for t in range(T):
                best = -np.inf
                for s in range(t + 1):
                    dot = 0.0
                    for d in range(HS):
                        dot += qkv[b, t, qo + d] * qkv[b, s, ko + d]
                    row[s] = dot * scale
                    if row[s] > best:
                        best = row[s]
                total = 0.0
                for s in range(t + 1):
                    row[s] = math.exp(row[s] - best)
                    total += row[s]
                for d in range(HS):
                    acc = 0.0
                    for s in range(t + 1):
                        acc += row[s] * qkv[b, s, vo + d]
                    out[b, t, qo + d] = acc / total
