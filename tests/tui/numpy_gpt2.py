"""GPT-2's forward pass in plain float64 numpy: the independent oracle for the views' honest-number tests."""

from __future__ import annotations

import math

import numpy as np


def numpy_forward(params: dict, ids: np.ndarray, n_head: int) -> dict[str, np.ndarray]:
    """GPT-2's forward pass in plain float64 numpy, independent of the core's kernels."""
    p = {k: v.astype(np.float64) for k, v in params.items()}
    T = len(ids)

    def layernorm(x, name):
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-5) * p[f"transformer.{name}.weight"] + p[f"transformer.{name}.bias"]

    out = {}
    x = p["transformer.wte.weight"][ids] + p["transformer.wpe.weight"][:T]
    C = x.shape[1]
    hs = C // n_head
    l = 0
    while f"transformer.h.{l}.ln_1.weight" in p:
        h = f"transformer.h.{l}."
        qkv = layernorm(x, f"h.{l}.ln_1") @ p[h + "attn.c_attn.weight"] + p[h + "attn.c_attn.bias"]
        q, k, v = (qkv[:, i * C : (i + 1) * C].reshape(T, n_head, hs).transpose(1, 0, 2) for i in range(3))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(hs)
        scores[:, np.triu(np.ones((T, T), bool), 1)] = -np.inf
        att = np.exp(scores - scores.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        out[f"h.{l}.scores"], out[f"h.{l}.att"] = scores, att
        y = (att @ v).transpose(1, 0, 2).reshape(T, C)
        x = x + y @ p[h + "attn.c_proj.weight"] + p[h + "attn.c_proj.bias"]
        pre = layernorm(x, f"h.{l}.ln_2") @ p[h + "mlp.c_fc.weight"] + p[h + "mlp.c_fc.bias"]
        act = 0.5 * pre * (1 + np.tanh(math.sqrt(2 / math.pi) * (pre + 0.044715 * pre**3)))
        out[f"h.{l}.mlp_act"] = act
        x = x + act @ p[h + "mlp.c_proj.weight"] + p[h + "mlp.c_proj.bias"]
        l += 1
    logits = layernorm(x, "ln_f") @ p["transformer.wte.weight"].T
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    out["logits"], out["probs"] = logits, probs / probs.sum(-1, keepdims=True)
    return out
