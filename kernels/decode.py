"""One-token GPT-2 decoding step over a KV cache: fused into one Numba call, or in pieces.

A small model's step is latency-bound: the matrices are small and a Python-level call per
operation would cost more than the arithmetic, so the whole step is one nogil kernel
(decode_step). A large model's step is bound by reading its weights once (0.5 GB per token at
GPT-2 small's size): there the same kernel runs its parallel compilation with parts > 1, each
product split into parts blocks of input rows (each thread streams one contiguous run of the
weights, as a sum over them would, and writes its own partial output; the partials are then added
with the bias, GELU and the residual), attention split by heads and the tied LM head by vocabulary
rows. Rows beat blocks of output columns (two threads streaming short slices of every row: 15-20
GB/s against 26-37) and one Numba call per token beat BLAS's sgemv called per product (27 ms against
34 ms a GPT-2 small token on one thread). The pieces (layernorm_one, gelu_one, attend_one) serve the
per-operation path that is kept as the oracle.
"""

import math

import numpy as np
from numba import njit, prange

from .flags import JIT, parallel_kernel
from .gelu import _gelu_forward_span

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


# Blocks start on multiples of this many rows or columns: two threads never write the same 64-byte
# cache line of an output (16 float32), and row blocks start on whole rows anyway.
_ALIGN = 16


@njit(**JIT)
def _block(n, parts, p):
    """[lo, hi) of block p of parts covering range(n), boundaries on multiples of _ALIGN."""
    step = (n + parts - 1) // parts
    step = (step + _ALIGN - 1) // _ALIGN * _ALIGN
    lo = min(n, p * step)
    return lo, min(n, lo + step)


@njit(**JIT)
def _matvec_rows(out, x, W, r0, r1):
    """WRITES out (OUT,) = x[r0:r1] @ W[r0:r1] with W (IN, OUT) row-major: a contiguous run of rows."""
    n = out.shape[0]
    for j in range(n):
        out[j] = 0.0
    i = r0
    # Eight input rows per pass over out: an eighth of the loads and stores of out, and eight
    # streams for the prefetcher (8 rows: 16-21 GB/s on one thread here, 4 rows: 14-19).
    while i + 8 <= r1:
        x0, x1, x2, x3, x4, x5, x6, x7 = x[i], x[i + 1], x[i + 2], x[i + 3], x[i + 4], x[i + 5], x[i + 6], x[i + 7]
        w0, w1, w2, w3 = W[i], W[i + 1], W[i + 2], W[i + 3]
        w4, w5, w6, w7 = W[i + 4], W[i + 5], W[i + 6], W[i + 7]
        for j in range(n):
            out[j] += (x0 * w0[j] + x1 * w1[j] + x2 * w2[j] + x3 * w3[j]) + (
                x4 * w4[j] + x5 * w5[j] + x6 * w6[j] + x7 * w7[j]
            )
        i += 8
    while i < r1:
        xi = x[i]
        wi = W[i]
        for j in range(n):
            out[j] += xi * wi[j]
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
    part = np.empty((parts, 4 * C), dtype=x.dtype)  # each row block's partial product (OUT <= 4C)
    wte = flat[wte_off : wte_off + V * C].reshape((V, C))
    for i in range(C):
        x[i] = wte[token, i] + wpe[pos, i]
    for l in range(L):
        o = offs[l]
        k_l, v_l = k_cache[l], v_cache[l]
        _layernorm(xn, x, flat[o[LN1_W] : o[LN1_W] + C], flat[o[LN1_B] : o[LN1_B] + C], eps)
        w = flat[o[ATTN_W] : o[ATTN_W] + C * 3 * C].reshape((C, 3 * C))
        for p in prange(parts):
            r0, r1 = _block(C, parts, p)
            _matvec_rows(part[p, : 3 * C], xn, w, r0, r1)
        b = flat[o[ATTN_B] : o[ATTN_B] + 3 * C]
        for j in range(3 * C):
            qkv[j] = b[j]
        for p in range(parts):
            for j in range(3 * C):
                qkv[j] += part[p, j]
        for h in range(NH):
            for d in range(HS):
                k_l[h, pos, d] = qkv[C + h * HS + d]
                v_l[h, pos, d] = qkv[2 * C + h * HS + d]
        for h in prange(n_head):
            _attend_head(y, att[h * Tmax : (h + 1) * Tmax], qkv, k_l, v_l, pos, h)
        w = flat[o[APROJ_W] : o[APROJ_W] + C * C].reshape((C, C))
        for p in prange(parts):
            r0, r1 = _block(C, parts, p)
            _matvec_rows(part[p, :C], y, w, r0, r1)
        b = flat[o[APROJ_B] : o[APROJ_B] + C]
        for j in range(C):  # the residual stream takes the projection directly
            x[j] += b[j]
        for p in range(parts):
            for j in range(C):
                x[j] += part[p, j]
        _layernorm(xn, x, flat[o[LN2_W] : o[LN2_W] + C], flat[o[LN2_B] : o[LN2_B] + C], eps)
        w = flat[o[FC_W] : o[FC_W] + C * 4 * C].reshape((C, 4 * C))
        for p in prange(parts):
            r0, r1 = _block(C, parts, p)
            _matvec_rows(part[p, : 4 * C], xn, w, r0, r1)
        b = flat[o[FC_B] : o[FC_B] + 4 * C]
        for j in range(4 * C):
            fc[j] = b[j]
        for p in range(parts):
            for j in range(4 * C):
                fc[j] += part[p, j]
        _gelu_forward_span(fc, fc)  # in place: the forward pass's vectorised GELU (a scalar tanh per unit was slower)
        w = flat[o[MPROJ_W] : o[MPROJ_W] + 4 * C * C].reshape((4 * C, C))
        for p in prange(parts):
            r0, r1 = _block(4 * C, parts, p)
            _matvec_rows(part[p, :C], fc, w, r0, r1)
        b = flat[o[MPROJ_B] : o[MPROJ_B] + C]
        for j in range(C):
            x[j] += b[j]
        for p in range(parts):
            for j in range(C):
                x[j] += part[p, j]
    _layernorm(xn, x, flat[lnf_off[0] : lnf_off[0] + C], flat[lnf_off[1] : lnf_off[1] + C], eps)
    for p in prange(parts):
        lo, hi = _block(V, parts, p)
        for v in range(lo, hi):
            dot = 0.0
            for i in range(C):
                dot += wte[v, i] * xn[i]
            logits[v] = dot
