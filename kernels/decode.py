"""One-token GPT-2 decoding step over a KV cache: fused into one Numba call, or in pieces.

A small model's step is latency-bound: the matrices are small and a Python-level call per
operation would cost more than the arithmetic, so the whole step is one nogil kernel
(decode_step). A large model's step is bound by reading its weights once (0.5 GB per token at
GPT-2 small's size): there the matrix-vector products go to BLAS's sgemv, which streams the
weights faster than the Numba loop and can use every core, and the pieces between them (LayerNorm,
attention over the cache, GELU) are the small kernels below.
"""

import math

import numpy as np
from numba import njit

from .flags import JIT
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
def _matvec(out, x, W, b):
    """out = x @ W + b with W (IN, OUT): rows of W are contiguous, so the inner loop vectorises."""
    n_out = out.shape[0]
    n_in = x.shape[0]
    for j in range(n_out):
        out[j] = b[j]
    i = 0
    # Four input rows per pass over out: a quarter of the loads and stores of out.
    while i + 4 <= n_in:
        x0, x1, x2, x3 = x[i], x[i + 1], x[i + 2], x[i + 3]
        w0, w1, w2, w3 = W[i], W[i + 1], W[i + 2], W[i + 3]
        for j in range(n_out):
            out[j] += x0 * w0[j] + x1 * w1[j] + x2 * w2[j] + x3 * w3[j]
        i += 4
    while i < n_in:
        xi = x[i]
        wi = W[i]
        for j in range(n_out):
            out[j] += xi * wi[j]
        i += 1


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


@njit(**JIT)
def decode_step(
    logits, x, xn, qkv, y, fc, att, flat, offs, wte_off, lnf_off, wpe, k_cache, v_cache, token, pos, n_head, eps
):
    """Advance one token at position pos: append its K and V to the cache, WRITE logits (V,).

    flat: all weights; offs (L, 12): offsets of each block tensor in flat; lnf_off: (weight, bias);
    k_cache, v_cache (L, NH, Tmax, HS); scratch x, xn, y (C,), qkv (3C,), fc (4C,), att (Tmax,).
    """
    C = x.shape[0]
    V = logits.shape[0]
    L = offs.shape[0]
    wte = flat[wte_off : wte_off + V * C].reshape((V, C))
    for i in range(C):
        x[i] = wte[token, i] + wpe[pos, i]
    for l in range(L):
        o = offs[l]
        _layernorm(xn, x, flat[o[LN1_W] : o[LN1_W] + C], flat[o[LN1_B] : o[LN1_B] + C], eps)
        _matvec(
            qkv, xn, flat[o[ATTN_W] : o[ATTN_W] + C * 3 * C].reshape((C, 3 * C)), flat[o[ATTN_B] : o[ATTN_B] + 3 * C]
        )
        attend_one(y, att, qkv, k_cache[l], v_cache[l], pos, n_head)
        _matvec(xn, y, flat[o[APROJ_W] : o[APROJ_W] + C * C].reshape((C, C)), flat[o[APROJ_B] : o[APROJ_B] + C])
        for i in range(C):
            x[i] += xn[i]
        _layernorm(xn, x, flat[o[LN2_W] : o[LN2_W] + C], flat[o[LN2_B] : o[LN2_B] + C], eps)
        _matvec(fc, xn, flat[o[FC_W] : o[FC_W] + C * 4 * C].reshape((C, 4 * C)), flat[o[FC_B] : o[FC_B] + 4 * C])
        for i in range(4 * C):
            u = fc[i]
            fc[i] = 0.5 * u * (1.0 + math.tanh(GELU_SCALE * (u + GELU_CUBIC * u * u * u)))
        _matvec(
            xn, fc, flat[o[MPROJ_W] : o[MPROJ_W] + 4 * C * C].reshape((4 * C, C)), flat[o[MPROJ_B] : o[MPROJ_B] + C]
        )
        for i in range(C):
            x[i] += xn[i]
    _layernorm(xn, x, flat[lnf_off[0] : lnf_off[0] + C], flat[lnf_off[1] : lnf_off[1] + C], eps)
    for v in range(V):
        dot = 0.0
        for i in range(C):
            dot += wte[v, i] * xn[i]
        logits[v] = dot
