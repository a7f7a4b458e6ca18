"""Fused causal multi-head self-attention on the GPU.

Forward: one block per (b, h) query row t. Threads share the keys s <= t for the scores and
the masked softmax (block reductions in float64), then the head dimensions for att @ v.
Backward: the same grid computes datt and the softmax gradient row by row; a second kernel
gives every element of dqkv to one thread, which sums its row or column of the (T, T) grads
in the CPU kernel's order: deterministic and atomic-free.
"""

import math

import numpy as np

from . import _runtime as rt
from ._runtime import BLOCK, block_max, block_sum, cuda


def _make_attention_forward(dt):
    @cuda.jit
    def attention_forward_kernel(out, att, pre, qkv, n_head, keep_pre):
        """Block (t, b*NH + h): row t of att[b, h] (and of pre, flat, when keep_pre), then out[b, t, h]."""
        B, T, C3 = qkv.shape
        C = C3 // 3
        NH = n_head
        HS = C // NH
        scale = dt(1.0 / math.sqrt(HS))
        t = cuda.blockIdx.x
        bh = cuda.blockIdx.y
        b = bh // NH
        h = bh % NH
        qo = h * HS
        ko = C + h * HS
        vo = 2 * C + h * HS
        tid = cuda.threadIdx.x
        buf = cuda.shared.array(BLOCK, np.float64)
        pre_row = (bh * T + t) * T  # pre is (B, NH, T, T) flattened
        best = -math.inf
        for s in range(tid, t + 1, BLOCK):
            dot = qkv[b, t, qo] * qkv[b, s, ko]
            for d in range(1, HS):
                dot += qkv[b, t, qo + d] * qkv[b, s, ko + d]
            att[b, h, t, s] = dot * scale
            # max of the stored (rounded) scores, so the largest gets exp(0) = 1 exactly
            score = att[b, h, t, s]
            if keep_pre:
                pre[pre_row + s] = score
            if score > best:
                best = score
        maxv = dt(block_max(buf, tid, best))  # exact: the max is one of the stored scores
        part = 0.0
        for s in range(tid, t + 1, BLOCK):
            e = math.exp(att[b, h, t, s] - maxv)
            att[b, h, t, s] = e
            part += e
        inv = dt(1.0 / block_sum(buf, tid, part))
        for s in range(tid, t + 1, BLOCK):
            att[b, h, t, s] = att[b, h, t, s] * inv
        for s in range(t + 1 + tid, T, BLOCK):
            att[b, h, t, s] = 0.0
            if keep_pre:
                pre[pre_row + s] = -math.inf
        cuda.syncthreads()  # the whole row of att is written before anyone reads it back
        for d in range(tid, HS, BLOCK):
            acc = att[b, h, t, 0] * qkv[b, 0, vo + d]
            for s in range(1, t + 1):
                acc += att[b, h, t, s] * qkv[b, s, vo + d]
            out[b, t, qo + d] = acc

    return attention_forward_kernel


_attention_forward_kernel = rt.by_dtype(_make_attention_forward)


def _make_attention_dpre(dt):
    @cuda.jit
    def attention_dpre_kernel(datt, dout, qkv, att, n_head):
        """Block (t, b*NH + h) WRITES row t of datt[b, h] = d(loss)/d(scaled scores), 0 above the diagonal."""
        B, T, C3 = qkv.shape
        C = C3 // 3
        NH = n_head
        HS = C // NH
        scale = dt(1.0 / math.sqrt(HS))
        t = cuda.blockIdx.x
        bh = cuda.blockIdx.y
        b = bh // NH
        h = bh % NH
        qo = h * HS
        vo = 2 * C + h * HS
        tid = cuda.threadIdx.x
        buf = cuda.shared.array(BLOCK, np.float64)
        # through out = att @ v: datt = dout . v
        part = 0.0
        for s in range(tid, t + 1, BLOCK):
            dot = dout[b, t, qo] * qkv[b, s, vo]
            for d in range(1, HS):
                dot += dout[b, t, qo + d] * qkv[b, s, vo + d]
            datt[b, h, t, s] = dot
            part += att[b, h, t, s] * datt[b, h, t, s]
        # through the softmax: dpre = att * (datt - sum(att * datt)), summed in float64
        inner = dt(block_sum(buf, tid, part))
        for s in range(tid, t + 1, BLOCK):
            datt[b, h, t, s] = att[b, h, t, s] * (datt[b, h, t, s] - inner) * scale
        for s in range(t + 1 + tid, T, BLOCK):
            datt[b, h, t, s] = 0.0

    return attention_dpre_kernel


_attention_dpre_kernel = rt.by_dtype(_make_attention_dpre)


@cuda.jit
def _attention_dqkv_kernel(dqkv, datt, dout, qkv, att, n_head):
    """One thread per element (b, r, j) of dqkv, WRITTEN from the finished datt (= dpre).

    dq[r] = sum_{s<=r} dpre[r, s] k[s];  dk[r] = sum_{t>=r} dpre[t, r] q[t];
    dv[r] = sum_{t>=r} att[t, r] dout[t]; each summed in increasing s or t like the CPU kernel.
    """
    B, T, C3 = qkv.shape
    C = C3 // 3
    NH = n_head
    HS = C // NH
    i = cuda.grid(1)
    if i < B * T * C3:
        j = i % C3
        br = i // C3
        b = br // T
        r = br % T
        which = j // C  # 0: q, 1: k, 2: v
        h = (j % C) // HS
        d = (j % C) % HS
        qo = h * HS + d
        ko = C + qo
        if which == 0:
            acc = datt[b, h, r, 0] * qkv[b, 0, ko]
            for s in range(1, r + 1):
                acc += datt[b, h, r, s] * qkv[b, s, ko]
        elif which == 1:
            acc = datt[b, h, r, r] * qkv[b, r, qo]
            for t in range(r + 1, T):
                acc += datt[b, h, t, r] * qkv[b, t, qo]
        else:
            acc = att[b, h, r, r] * dout[b, r, qo]
            for t in range(r + 1, T):
                acc += att[b, h, t, r] * dout[b, t, qo]
        dqkv[b, r, j] = acc


def attention_forward(out, att, preatt, qkv, n_head):
    """WRITES out (B, T, C), att (B, NH, T, T) and, if preatt.size > 0, preatt (B, NH, T, T).

    qkv (B, T, 3C) holds [q | k | v]; head h uses columns h*HS:(h+1)*HS of each third.
    att[b, h, t, s] = softmax_s(q_t . k_s / sqrt(HS)) for s <= t, exactly 0 above the diagonal;
    preatt holds the raw scaled scores with -inf above the diagonal (for display).
    """
    rt.require_cuda()
    B, T, C3 = qkv.shape
    keep_pre = preatt.size > 0
    if att.size == 0:
        return
    # without preatt the kernel never writes pre; att's flat view stands in (one compiled type)
    pre = rt.flat(preatt if keep_pre else att)
    kernel = _attention_forward_kernel(qkv.dtype)
    rt.launch(kernel, (T, B * n_head), BLOCK, out, att, pre, qkv, n_head, keep_pre)


def attention_backward(dqkv, datt, dout, qkv, att, n_head):
    """WRITES dqkv (B, T, 3C) from dout (B, T, C) and the saved att; datt (B, NH, T, T) is scratch."""
    rt.require_cuda()
    B, T, C3 = qkv.shape
    rt.launch(_attention_dpre_kernel(qkv.dtype), (T, B * n_head), BLOCK, datt, dout, qkv, att, n_head)
    n = B * T * C3
    rt.launch(_attention_dqkv_kernel, rt.blocks_for(n), BLOCK, dqkv, datt, dout, qkv, att, n_head)


# Head dimensions each thread of the fused kernel keeps in registers: head sizes up to
# FUSED_DIMS * BLOCK (2,048 on a GPU, 64 under the simulator).
FUSED_DIMS = 8


def _make_attention_fused(dt):
    @cuda.jit
    def attention_fused_kernel(out, qkv, n_head):
        """Block (t, b*NH + h): out[b, t, head h] in one pass over the keys s <= t, BLOCK at a time,
        with a running max and sum (online softmax); the weights live in shared memory only."""
        B, T, C3 = qkv.shape
        C = C3 // 3
        NH = n_head
        HS = C // NH
        scale = dt(1.0 / math.sqrt(HS))
        t = cuda.blockIdx.x
        bh = cuda.blockIdx.y
        b = bh // NH
        h = bh % NH
        qo = h * HS
        ko = C + h * HS
        vo = 2 * C + h * HS
        tid = cuda.threadIdx.x
        buf = cuda.shared.array(BLOCK, np.float64)
        weights = cuda.shared.array(BLOCK, np.float64)
        acc = cuda.local.array(FUSED_DIMS, np.float64)  # this thread's dims d = tid + j * BLOCK
        for j in range(FUSED_DIMS):
            acc[j] = 0.0
        run_max = -math.inf
        run_sum = 0.0
        for s0 in range(0, t + 1, BLOCK):
            s = s0 + tid
            score = -math.inf
            if s <= t:
                dot = qkv[b, t, qo] * qkv[b, s, ko]
                for d in range(1, HS):
                    dot += qkv[b, t, qo + d] * qkv[b, s, ko + d]
                score = dt(dot * scale)  # rounded as the stored scores of the two-pass kernel
            new_max = block_max(buf, tid, score)
            if run_max > new_max:  # (no builtin max: it does not compile for the device here)
                new_max = run_max
            fade = math.exp(run_max - new_max)  # 0 on the first chunk (run_max = -inf)
            p = math.exp(score - new_max) if s <= t else 0.0
            weights[tid] = p
            run_sum = run_sum * fade + block_sum(buf, tid, p)  # synchronises: weights are written
            n = t + 1 - s0
            if n > BLOCK:
                n = BLOCK
            for j in range(FUSED_DIMS):
                d = tid + j * BLOCK
                if d < HS:
                    part = 0.0
                    for i in range(n):
                        part += weights[i] * qkv[b, s0 + i, vo + d]
                    acc[j] = acc[j] * fade + part
            cuda.syncthreads()  # weights are rewritten by the next chunk
            run_max = new_max
        for j in range(FUSED_DIMS):
            d = tid + j * BLOCK
            if d < HS:
                out[b, t, qo + d] = acc[j] / run_sum

    return attention_fused_kernel


_attention_fused_kernel = rt.by_dtype(_make_attention_fused)


def attention_forward_fused(out, qkv, n_head):
    """WRITES out (B, T, C) = causal attention of qkv (B, T, 3C), as attention_forward computes it,
    without writing the (B, NH, T, T) weights: for a pass whose backward recomputes them."""
    rt.require_cuda()
    B, T, C3 = qkv.shape
    HS = C3 // 3 // n_head
    if HS > FUSED_DIMS * BLOCK:
        raise ValueError(f"attention_forward_fused: head size {HS} over {FUSED_DIMS * BLOCK}")
    rt.launch(_attention_fused_kernel(out.dtype), (T, B * n_head), BLOCK, out, qkv, int(n_head))
