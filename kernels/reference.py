"""Slow, obvious numpy versions of every kernel: the test oracle. Clarity over speed.

Each function returns new arrays instead of writing into buffers; gradients returned here are
the kernel's contribution (what a WRITES kernel writes, or what an ADDS kernel adds).
"""

import numpy as np

from .gelu import GELU_CUBIC, GELU_SCALE


def encoder_forward(ids, wte, wpe):
    """(B, T, C) = wte[ids] + wpe[:T]."""
    T = ids.shape[1]
    return wte[ids] + wpe[:T][None, :, :]


def encoder_backward(dout, ids, V, Tmax):
    """Returns (dwte (V, C), dwpe (Tmax, C)) contributions of dout (B, T, C)."""
    B, T, C = dout.shape
    dwte = np.zeros((V, C), dout.dtype)
    np.add.at(dwte, ids.reshape(-1), dout.reshape(-1, C))
    dwpe = np.zeros((Tmax, C), dout.dtype)
    dwpe[:T] = dout.sum(axis=0)
    return dwte, dwpe


def layernorm_forward(inp, weight, bias, eps):
    """Returns (out, mean, rstd) for rows of inp (N, C); biased variance."""
    mean = inp.mean(axis=1)
    var = ((inp - mean[:, None]) ** 2).mean(axis=1)
    rstd = 1.0 / np.sqrt(var + eps)
    out = (inp - mean[:, None]) * rstd[:, None] * weight + bias
    return out, mean, rstd


def layernorm_backward(dout, inp, weight, mean, rstd):
    """Returns (dinp, dweight, dbias)."""
    C = inp.shape[1]
    norm = (inp - mean[:, None]) * rstd[:, None]
    dnorm = dout * weight
    dinp = (dnorm - dnorm.mean(axis=1, keepdims=True) - norm * (dnorm * norm).mean(axis=1, keepdims=True)) * rstd[
        :, None
    ]
    assert dinp.shape[1] == C
    return dinp, (dout * norm).sum(axis=0), dout.sum(axis=0)


def matmul_forward(inp, weight, bias):
    """inp @ weight (+ bias unless it has shape (0,))."""
    out = inp @ weight
    return out + bias if bias.shape[0] > 0 else out


def matmul_backward(dout, inp, weight):
    """Returns (dinp, dweight, dbias)."""
    return dout @ weight.T, inp.T @ dout, dout.sum(axis=0)


def lm_head_forward(inp, wte):
    return inp @ wte.T


def lm_head_backward(dlogits, inp, wte):
    """Returns (dinp, dwte)."""
    return dlogits @ wte, dlogits.T @ inp


def _split_heads(qkv, n_head):
    """(B, T, 3C) -> q, k, v each (B, NH, T, HS)."""
    B, T, C3 = qkv.shape
    C = C3 // 3
    HS = C // n_head
    q, k, v = qkv[..., :C], qkv[..., C : 2 * C], qkv[..., 2 * C :]
    return [x.reshape(B, T, n_head, HS).transpose(0, 2, 1, 3) for x in (q, k, v)]


def attention_forward(qkv, n_head):
    """Returns (out (B, T, C), att (B, NH, T, T), preatt (B, NH, T, T) with -inf above the diagonal)."""
    B, T, C3 = qkv.shape
    C = C3 // 3
    HS = C // n_head
    q, k, v = _split_heads(qkv, n_head)
    preatt = q @ k.transpose(0, 1, 3, 2) / np.sqrt(HS)
    future = np.triu(np.ones((T, T), dtype=bool), k=1)
    preatt = np.where(future, -np.inf, preatt)
    att = np.exp(preatt - preatt.max(axis=-1, keepdims=True))
    att = att / att.sum(axis=-1, keepdims=True)
    out = (att @ v).transpose(0, 2, 1, 3).reshape(B, T, C)
    return out, att, preatt


def attention_backward(dout, qkv, att, n_head):
    """Returns dqkv (B, T, 3C)."""
    B, T, C3 = qkv.shape
    C = C3 // 3
    HS = C // n_head
    q, k, v = _split_heads(qkv, n_head)
    do = dout.reshape(B, T, n_head, HS).transpose(0, 2, 1, 3)
    dv = att.transpose(0, 1, 3, 2) @ do
    datt = do @ v.transpose(0, 1, 3, 2)
    dpre = att * (datt - (att * datt).sum(axis=-1, keepdims=True)) / np.sqrt(HS)
    dq = dpre @ k
    dk = dpre.transpose(0, 1, 3, 2) @ q
    merge = lambda x: x.transpose(0, 2, 1, 3).reshape(B, T, C)  # noqa: E731
    return np.concatenate([merge(dq), merge(dk), merge(dv)], axis=-1)


def gelu_forward(inp):
    return 0.5 * inp * (1.0 + np.tanh(GELU_SCALE * (inp + GELU_CUBIC * inp**3)))


def gelu_backward(inp, dout):
    th = np.tanh(GELU_SCALE * (inp + GELU_CUBIC * inp**3))
    dth = (1.0 - th**2) * GELU_SCALE * (1.0 + 3.0 * GELU_CUBIC * inp**2)
    return (0.5 * (1.0 + th) + 0.5 * inp * dth) * dout


def softmax_forward(inp):
    e = np.exp(inp - inp.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def residual_forward(a, b):
    return a + b


def dropout_forward(inp, rand, p):
    """Returns (out, mask)."""
    mask = (rand >= p).astype(inp.dtype) / (1.0 - p)
    return inp * mask, mask


def dropout_backward(dout, mask):
    return dout * mask


def crossentropy_forward(logits, targets):
    """Returns (losses (N,), probs (N, V))."""
    rows = np.arange(logits.shape[0])
    m = logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits - m).sum(axis=1)) + m[:, 0]
    return lse - logits[rows, targets], softmax_forward(logits)


def crossentropy_backward(probs, targets, scale):
    d = probs.copy()
    d[np.arange(probs.shape[0]), targets] -= 1.0
    return d * scale


def count_correct(logits, targets):
    return int((logits.argmax(axis=1) == targets).sum())


def grad_norm(grads):
    return float(np.sqrt((grads.astype(np.float64) ** 2).sum()))


def adamw_update(params, grads, m, v, lr, beta1, beta2, eps, weight_decay, step, n_decay):
    """Returns new (params, m, v) for one PyTorch AdamW step (step is 1-based)."""
    p = params.copy()
    p[:n_decay] *= 1.0 - lr * weight_decay
    m = beta1 * m + (1.0 - beta1) * grads
    v = beta2 * v + (1.0 - beta2) * grads * grads
    mhat = m / (1.0 - beta1**step)
    vhat = v / (1.0 - beta2**step)
    p = p - lr * mhat / (np.sqrt(vhat) + eps)
    return p, m, v


def gather_windows(data, uniform, T):
    """x, y (B, T): the training windows starting at floor(u * (len(data) - T)) for each draw u."""
    span = len(data) - T
    starts = np.minimum((np.asarray(uniform) * span).astype(np.int64), span - 1)
    x = np.stack([data[s : s + T] for s in starts])
    y = np.stack([data[s + 1 : s + T + 1] for s in starts])
    return x, y


def kv_store(k_cache, v_cache, qkv, start):
    """Returns copies of the caches (NH, Tmax, HS) with positions start.. holding qkv's (T, 3C) keys and values."""
    NH, _, HS = k_cache.shape
    T, C = qkv.shape[0], NH * HS
    k, v = k_cache.copy(), v_cache.copy()
    k[:, start : start + T] = qkv[:, C : 2 * C].reshape(T, NH, HS).transpose(1, 0, 2)
    v[:, start : start + T] = qkv[:, 2 * C :].reshape(T, NH, HS).transpose(1, 0, 2)
    return k, v


def attend_one(qkv, k_cache, v_cache, pos):
    """Returns (y (C,), k, v): one query's causal attention over cache positions 0..pos, after
    storing its own key and value at pos (the returned caches)."""
    NH, _, HS = k_cache.shape
    C = NH * HS
    k, v = kv_store(k_cache, v_cache, qkv[None, :], pos)
    q = qkv[:C].reshape(NH, HS)
    scores = np.einsum("hd,hsd->hs", q, k[:, : pos + 1]) / np.sqrt(HS)
    w = np.exp(scores - scores.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    return np.einsum("hs,hsd->hd", w, v[:, : pos + 1]).reshape(C), k, v
