"""One-token GPT-2 decoding step over a KV cache: fused into one Numba call, or in pieces.

A small model's step is latency-bound: the matrices are small and a Python-level call per
operation would cost more than the arithmetic, so the whole step is one nogil kernel
(decode_step). A large model's step is bound by reading its weights once (0.5 GB per token at
GPT-2 small's size): there the same kernel runs its parallel compilation with parts > 1, each
product split into parts blocks of output columns (every thread streams its own slice of every
weight row, so the threads read disjoint bytes), attention split by heads and the tied LM head by
vocabulary rows; bias, GELU and the residual add are done by the thread that wrote the columns.
One Numba call per token outran BLAS's sgemv called per product (one thread: 27 ms against 34 ms
a GPT-2 small token). The pieces (layernorm_one, gelu_one, attend_one) serve the per-operation
path that is kept as the oracle.
"""

import math

import numpy as np
from numba import njit, prange

from .flags import JIT, parallel_kernel
from .gelu import GELU_CUBIC, GELU_SCALE

# A transformer block's tensors in Hugging Face GPT-2 naming. Their order is the column order of the
# per-layer offset table decode_step reads, and the order the model lays each block out in.
BLOCK_TENSORS = (
    "ln_1.weight",
    "ln_1.bias",
    "attn.c_attn.weight",
    "attn.c_attn.bias",
    "attn.c_proj.weight",
    "attn.c_proj.bias",
    "ln_2.weight",
    "ln_2.bias",
    "mlp.c_fc.weight",
    "mlp.c_fc.bias",
    "mlp.c_proj.weight",
    "mlp.c_proj.bias",
)
LN1_W, LN1_B = BLOCK_TENSORS.index("ln_1.weight"), BLOCK_TENSORS.index("ln_1.bias")
ATTN_W, ATTN_B = BLOCK_TENSORS.index("attn.c_attn.weight"), BLOCK_TENSORS.index("attn.c_attn.bias")
APROJ_W, APROJ_B = BLOCK_TENSORS.index("attn.c_proj.weight"), BLOCK_TENSORS.index("attn.c_proj.bias")
LN2_W, LN2_B = BLOCK_TENSORS.index("ln_2.weight"), BLOCK_TENSORS.index("ln_2.bias")
FC_W, FC_B = BLOCK_TENSORS.index("mlp.c_fc.weight"), BLOCK_TENSORS.index("mlp.c_fc.bias")
MPROJ_W, MPROJ_B = BLOCK_TENSORS.index("mlp.c_proj.weight"), BLOCK_TENSORS.index("mlp.c_proj.bias")


@njit(**JIT)
def _layernorm(out, x, w, b, eps):
    C = x.shape[0]
    mean = 0.0
    for i in range(C):
        mean += x[i]
    mean /= C
    var = 0.0
    for i in range(C):
        d = x[i] - mean
        var += d * d
    rstd = 1.0 / math.sqrt(var / C + eps)
    for i in range(C):
        out[i] = (x[i] - mean) * rstd * w[i] + b[i]


@njit(**JIT)
def layernorm_one(out, x, w, b, eps):
    """WRITES out (C,) = LayerNorm of one row x (C,)."""
    _layernorm(out, x, w, b, eps)


@njit(**JIT)
def gelu_one(x):
    """x (N,) = gelu(x) in place, GPT-2's tanh approximation."""
    for i in range(x.shape[0]):
        u = x[i]
        x[i] = 0.5 * u * (1.0 + math.tanh(0.7978845608028654 * (u + 0.044715 * u * u * u)))


@njit(**JIT)
def attend_one(y, att, qkv, k_cache, v_cache, pos, n_head):
    """Append this token's key and value at pos of one layer's cache (NH, Tmax, HS), then WRITES
    y (C,) = every head's softmax(q . k_s / sqrt(HS)) over s <= pos, applied to the values.
    qkv (3C,) is [q | k | v]; att (at least Tmax,; NH * Tmax as the GPU's twin needs) is scratch."""
    C = y.shape[0]
    HS = C // n_head
    scale = 1.0 / math.sqrt(HS)
    for h in range(n_head):
        for d in range(HS):
            k_cache[h, pos, d] = qkv[C + h * HS + d]
            v_cache[h, pos, d] = qkv[2 * C + h * HS + d]
    for h in range(n_head):
        q0 = h * HS
        maxval = -np.inf
        for s in range(pos + 1):
            dot = 0.0
            for d in range(HS):
                dot += qkv[q0 + d] * k_cache[h, s, d]
            att[s] = dot * scale
            if att[s] > maxval:
                maxval = att[s]
        total = 0.0
        for s in range(pos + 1):
            att[s] = math.exp(att[s] - maxval)
            total += att[s]
        for d in range(HS):
            y[q0 + d] = 0.0
        for s in range(pos + 1):
            w = att[s] / total
            for d in range(HS):
                y[q0 + d] += w * v_cache[h, s, d]


@njit(**JIT)
def kv_store(k_cache, v_cache, qkv, start):
    """WRITES positions start..start+T of one layer's caches k_cache, v_cache (NH, Tmax, HS) from the
    keys and values of qkv (T, 3C) = [q | k | v], heads side by side."""
    NH, Tmax, HS = k_cache.shape
    T = qkv.shape[0]
    C = NH * HS
    if start < 0 or start + T > Tmax:
        raise ValueError("kv_store: positions outside the cache")
    for h in range(NH):
        for t in range(T):
            for d in range(HS):
                k_cache[h, start + t, d] = qkv[t, C + h * HS + d]
                v_cache[h, start + t, d] = qkv[t, 2 * C + h * HS + d]


# Column blocks start on multiples of this many floats (a 64-byte cache line of float32): two
# threads never write the same line of an output.
_COL_ALIGN = 16


@njit(**JIT)
def _block(n, parts, p):
    """[lo, hi) of block p of parts covering range(n), boundaries on multiples of _COL_ALIGN."""
    step = (n + parts - 1) // parts
    step = (step + _COL_ALIGN - 1) // _COL_ALIGN * _COL_ALIGN
    lo = min(n, p * step)
    return lo, min(n, lo + step)


@njit(**JIT)
def _matvec_cols(out, x, W, lo, hi):
    """ADDS x @ W[:, lo:hi] to out[lo:hi], W (IN, OUT) row-major: each row's slice is contiguous."""
    n_in = x.shape[0]
    # Views starting at the block: indexing from lo instead kept LLVM from vectorising the loop
    # as well (a GPT-2 small step took 37 ms instead of 27).
    o = out[lo:hi]
    n = hi - lo
    i = 0
    # Four input rows per pass over the block: a quarter of the loads and stores of out.
    while i + 4 <= n_in:
        x0, x1, x2, x3 = x[i], x[i + 1], x[i + 2], x[i + 3]
        w0, w1, w2, w3 = W[i, lo:hi], W[i + 1, lo:hi], W[i + 2, lo:hi], W[i + 3, lo:hi]
        for j in range(n):
            o[j] += x0 * w0[j] + x1 * w1[j] + x2 * w2[j] + x3 * w3[j]
        i += 4
    while i < n_in:
        xi = x[i]
        wi = W[i, lo:hi]
        for j in range(n):
            o[j] += xi * wi[j]
        i += 1


@njit(**JIT)
def _attend_head(y, att, qkv, k_cache, v_cache, pos, h):
    """WRITES head h's slice of y (C,): softmax(q . k_s / sqrt(HS)) over s <= pos applied to the
    values; the cache (NH, Tmax, HS) already holds position pos. att (at least pos + 1,) is scratch."""
    HS = k_cache.shape[2]
    scale = 1.0 / math.sqrt(HS)
    q0 = h * HS
    maxval = -np.inf
    for s in range(pos + 1):
        dot = 0.0
        for d in range(HS):
            dot += qkv[q0 + d] * k_cache[h, s, d]
        att[s] = dot * scale
        if att[s] > maxval:
            maxval = att[s]
    total = 0.0
    for s in range(pos + 1):
        att[s] = math.exp(att[s] - maxval)
        total += att[s]
    for d in range(HS):
        y[q0 + d] = 0.0
    for s in range(pos + 1):
        w = att[s] / total
        for d in range(HS):
            y[q0 + d] += w * v_cache[h, s, d]


def _decode_work(logits, x, xn, qkv, y, fc, att, flat, *rest):
    """Elements a step reads when split (parts > 1); 0 keeps one part on the serial compilation."""
    return flat.size if rest[-1] > 1 else 0


@parallel_kernel(work=_decode_work)
def decode_step(
    logits, x, xn, qkv, y, fc, att, flat, offs, wte_off, lnf_off, wpe, k_cache, v_cache, token, pos, n_head, eps, parts
):
    """Advance one token at position pos: append its K and V to the cache, WRITE logits (V,).

    flat: all weights; offs (L, 12): offsets of each block tensor in flat; lnf_off: (weight, bias);
    k_cache, v_cache (L, NH, Tmax, HS); scratch x, xn, y (C,), qkv (3C,), fc (4C,), att (NH * Tmax,);
    parts: blocks each product is split into (the parallel compilation runs one per thread).
    """
    C = x.shape[0]
    V = logits.shape[0]
    L = offs.shape[0]
    NH, Tmax, HS = k_cache.shape[1], k_cache.shape[2], k_cache.shape[3]
    wte = flat[wte_off : wte_off + V * C].reshape((V, C))
    for i in range(C):
        x[i] = wte[token, i] + wpe[pos, i]
    for l in range(L):
        o = offs[l]
        k_l, v_l = k_cache[l], v_cache[l]
        _layernorm(xn, x, flat[o[LN1_W] : o[LN1_W] + C], flat[o[LN1_B] : o[LN1_B] + C], eps)
        w_attn = flat[o[ATTN_W] : o[ATTN_W] + C * 3 * C].reshape((C, 3 * C))
        b_attn = flat[o[ATTN_B] : o[ATTN_B] + 3 * C]
        for p in prange(parts):
            lo, hi = _block(3 * C, parts, p)
            for j in range(lo, hi):
                qkv[j] = b_attn[j]
            _matvec_cols(qkv, xn, w_attn, lo, hi)
        for h in range(NH):
            for d in range(HS):
                k_l[h, pos, d] = qkv[C + h * HS + d]
                v_l[h, pos, d] = qkv[2 * C + h * HS + d]
        for h in prange(n_head):
            _attend_head(y, att[h * Tmax : (h + 1) * Tmax], qkv, k_l, v_l, pos, h)
        w_aproj = flat[o[APROJ_W] : o[APROJ_W] + C * C].reshape((C, C))
        b_aproj = flat[o[APROJ_B] : o[APROJ_B] + C]
        for p in prange(parts):
            lo, hi = _block(C, parts, p)
            for j in range(lo, hi):  # the residual stream takes the projection directly
                x[j] += b_aproj[j]
            _matvec_cols(x, y, w_aproj, lo, hi)
        _layernorm(xn, x, flat[o[LN2_W] : o[LN2_W] + C], flat[o[LN2_B] : o[LN2_B] + C], eps)
        w_fc = flat[o[FC_W] : o[FC_W] + C * 4 * C].reshape((C, 4 * C))
        b_fc = flat[o[FC_B] : o[FC_B] + 4 * C]
        for p in prange(parts):
            lo, hi = _block(4 * C, parts, p)
            for j in range(lo, hi):
                fc[j] = b_fc[j]
            _matvec_cols(fc, xn, w_fc, lo, hi)
            for i in range(lo, hi):
                u = fc[i]
                fc[i] = 0.5 * u * (1.0 + math.tanh(GELU_SCALE * (u + GELU_CUBIC * u * u * u)))
        w_mproj = flat[o[MPROJ_W] : o[MPROJ_W] + 4 * C * C].reshape((4 * C, C))
        b_mproj = flat[o[MPROJ_B] : o[MPROJ_B] + C]
        for p in prange(parts):
            lo, hi = _block(C, parts, p)
            for j in range(lo, hi):
                x[j] += b_mproj[j]
            _matvec_cols(x, fc, w_mproj, lo, hi)
    _layernorm(xn, x, flat[lnf_off[0] : lnf_off[0] + C], flat[lnf_off[1] : lnf_off[1] + C], eps)
    for p in prange(parts):
        lo, hi = _block(V, parts, p)
        for v in range(lo, hi):
            dot = 0.0
            for i in range(C):
                dot += wte[v, i] * xn[i]
            logits[v] = dot
