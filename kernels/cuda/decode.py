"""Generation over a KV cache on the GPU: storing keys and values, and one query's attention.

The rest of a decoding step is the training kernels on one row (LayerNorm, the products, GELU,
the residual adds, the tied LM head), so only these two are particular to decoding.
"""

import math

import numpy as np

from . import _runtime as rt
from ._runtime import BLOCK, block_max, block_sum, cuda


@cuda.jit
def _kv_store_kernel(k_cache, v_cache, qkv, start):
    """One thread per (t, c), c = h * HS + d: the key and value of row t go to position start + t."""
    T, C3 = qkv.shape
    C = C3 // 3
    HS = k_cache.shape[2]
    i = cuda.grid(1)
    if i < T * C:
        t = i // C
        c = i % C
        h = c // HS
        d = c % HS
        k_cache[h, start + t, d] = qkv[t, C + c]
        v_cache[h, start + t, d] = qkv[t, 2 * C + c]


def kv_store(k_cache, v_cache, qkv, start):
    """WRITES positions start..start+T of one layer's caches k_cache, v_cache (NH, Tmax, HS) from the
    keys and values of qkv (T, 3C) = [q | k | v], heads side by side."""
    rt.require_cuda()
    T, C3 = qkv.shape
    if start < 0 or start + T > k_cache.shape[1]:
        raise ValueError(f"kv_store: positions {start}..{start + T} outside the cache of {k_cache.shape[1]}")
    n = T * (C3 // 3)
    rt.launch(_kv_store_kernel, rt.blocks_for(n), BLOCK, k_cache, v_cache, qkv, int(start))


def _make_attend_one(dt):
    @cuda.jit
    def attend_one_kernel(y, att, qkv, k_cache, v_cache, pos):
        """Block h: append head h's key and value at pos, then y[head h] = softmax(q . k_s / sqrt(HS))
        over s <= pos applied to the values; att[h * Tmax:][:pos + 1] holds the weights meanwhile."""
        NH, Tmax, HS = k_cache.shape
        C = NH * HS
        h = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        buf = cuda.shared.array(BLOCK, np.float64)
        q0 = h * HS
        row = h * Tmax
        for d in range(tid, HS, BLOCK):
            k_cache[h, pos, d] = qkv[C + q0 + d]
            v_cache[h, pos, d] = qkv[2 * C + q0 + d]
        cuda.syncthreads()
        scale = 1.0 / math.sqrt(HS)
        best = -math.inf
        for s in range(tid, pos + 1, BLOCK):
            dot = 0.0
            for d in range(HS):
                dot += qkv[q0 + d] * k_cache[h, s, d]
            att[row + s] = dot * scale
            score = att[row + s]  # the stored (rounded) score, as the CPU kernel compares them
            if score > best:
                best = score
        maxv = dt(block_max(buf, tid, best))
        part = 0.0
        for s in range(tid, pos + 1, BLOCK):
            e = math.exp(att[row + s] - maxv)
            att[row + s] = e
            part += att[row + s]
        total = block_sum(buf, tid, part)  # synchronises: every weight is written
        for d in range(tid, HS, BLOCK):
            acc = 0.0
            for s in range(pos + 1):
                acc += att[row + s] / total * v_cache[h, s, d]
            y[q0 + d] = acc

    return attend_one_kernel


_attend_one_kernel = rt.by_dtype(_make_attend_one)


def attend_one(y, att, qkv, k_cache, v_cache, pos, n_head):
    """Append this token's key and value at pos of one layer's cache (NH, Tmax, HS), then WRITES
    y (C,) = every head's softmax(q . k_s / sqrt(HS)) over s <= pos, applied to the values.
    qkv (3C,) is [q | k | v]; att (NH * Tmax,) is scratch (one row per head, the heads run at once)."""
    rt.require_cuda()
    NH, Tmax, HS = k_cache.shape
    if NH != n_head or att.shape[0] < NH * Tmax or not 0 <= pos < Tmax:
        raise ValueError("attend_one: cache, scratch or position do not fit the heads")
    rt.launch(_attend_one_kernel(y.dtype), NH, BLOCK, y, att, qkv, k_cache, v_cache, int(pos))
