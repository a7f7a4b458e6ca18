"""The slow obvious GPT-2 forward pass in float64 numpy: the oracle the fast model is tested against."""

from __future__ import annotations

import numpy as np


def _layernorm(x, w, b, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def _gelu(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def reference_logits(params: dict, wpe: np.ndarray, n_layer: int, n_head: int, ids: np.ndarray) -> np.ndarray:
    """Logits (B, T, V) of GPT-2 with the given Hugging Face-named weights, computed plainly in float64."""
    P = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    ids = np.atleast_2d(ids)
    B, T = ids.shape
    x = P["transformer.wte.weight"][ids] + np.asarray(wpe, dtype=np.float64)[:T]
    C = x.shape[-1]
    HS = C // n_head
    future = np.triu(np.ones((T, T), dtype=bool), k=1)
    for l in range(n_layer):
        h = f"transformer.h.{l}."
        qkv = (
            _layernorm(x, P[h + "ln_1.weight"], P[h + "ln_1.bias"]) @ P[h + "attn.c_attn.weight"]
            + P[h + "attn.c_attn.bias"]
        )
        q, k, v = (qkv[..., i * C : (i + 1) * C].reshape(B, T, n_head, HS).transpose(0, 2, 1, 3) for i in range(3))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(HS)
        scores[..., future] = -np.inf
        att = np.exp(scores - scores.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        y = (att @ v).transpose(0, 2, 1, 3).reshape(B, T, C)
        x = x + y @ P[h + "attn.c_proj.weight"] + P[h + "attn.c_proj.bias"]
        hidden = _gelu(
            _layernorm(x, P[h + "ln_2.weight"], P[h + "ln_2.bias"]) @ P[h + "mlp.c_fc.weight"] + P[h + "mlp.c_fc.bias"]
        )
        x = x + hidden @ P[h + "mlp.c_proj.weight"] + P[h + "mlp.c_proj.bias"]
    x = _layernorm(x, P["transformer.ln_f.weight"], P["transformer.ln_f.bias"])
    return x @ P["transformer.wte.weight"].T


def reference_loss(params, wpe, n_layer, n_head, ids, targets) -> float:
    """Mean cross-entropy of the reference logits."""
    logits = reference_logits(params, wpe, n_layer, n_head, ids)
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return float(-np.take_along_axis(logp, np.atleast_2d(targets)[..., None], -1).mean())
