"""GPT-2's backward pass written out plainly in float64 numpy: the chain rule, step by step.

The slow obvious version beside the model's kernels: it shares no code with them, starts from the
float64 reference forward pass (reference.py), and returns every gradient under the names the
model's BackTrace uses (`d.` + the forward Trace's name), plus the gradient of every weight under
its checkpoint name. It is the oracle the backward trace and the Backward screen are tested against.

Shapes: T tokens, C = n_embd, NH heads of size HS = C / NH, V tokens in the vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .config import LN_EPS
from .reference import GELU_CUBIC, GELU_SCALE, forward, merge_heads, n_layers, split_heads


def gelu_grad(x: np.ndarray) -> np.ndarray:
    """d gelu(x) / dx for the tanh approximation: 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) u'(x)."""
    u = GELU_SCALE * (x + GELU_CUBIC * x**3)
    th = np.tanh(u)
    return 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th**2) * GELU_SCALE * (1.0 + 3.0 * GELU_CUBIC * x**2)


def layernorm_backward(dy, x, weight, mean, rstd):
    """Gradients (dx, dweight, dbias) of y = (x - mean) * rstd * weight + bias, rows (T, C)."""
    xhat = (x - mean[:, None]) * rstd[:, None]
    dxhat = dy * weight
    dx = rstd[:, None] * (dxhat - dxhat.mean(-1, keepdims=True) - xhat * (dxhat * xhat).mean(-1, keepdims=True))
    return dx, (dy * xhat).sum(0), dy.sum(0)


def backward(
    params: Mapping[str, np.ndarray],
    ids: np.ndarray,
    targets: np.ndarray,
    n_head: int,
    wpe: np.ndarray | None = None,
    eps: float = LN_EPS,
    attention: bool = True,
) -> tuple[float, dict[str, np.ndarray]]:
    """(mean cross-entropy of targets (T,) after ids (T,), every gradient by name), all in float64.

    Names: `d.logits`, `d.lm_head` (the head's share of the token table's gradient), `d.ln_f`, per
    layer `d.h.{l}.res_2`, `.mlp_out`, `.mlp_act`, `.mlp_pre`, `.ln_2`, `.res_1`, `.attn_proj`,
    `.attn_concat`, `.head_out`, `.att`, `.scores`, `.q`, `.k`, `.v`, `.ln_1`; `d.x0`, `d.wte` (the
    token table's gradient at each position's row), `d.wpe`; and `transformer.*` weight gradients.
    `attention` False: an MLP-only model (no attention names; its weights' gradients are 0)."""
    P = {name: np.asarray(w, dtype=np.float64) for name, w in params.items()}
    ids, targets = np.asarray(ids), np.asarray(targets)
    f = forward(P, ids, n_head, wpe, eps, attention=attention)
    T = len(ids)
    wte = P["transformer.wte.weight"]
    C = wte.shape[1]
    HS = C // n_head
    d: dict[str, np.ndarray] = {}
    loss = float(-np.log(f["probs"][np.arange(T), targets]).mean())

    # Loss: mean over the T positions of -log p(target); its gradient at the logits is p - onehot.
    dlogits = f["probs"].copy()
    dlogits[np.arange(T), targets] -= 1.0
    d["d.logits"] = dlogits = dlogits / T  # (T, V)
    # LM head: logits = ln_f @ wte.T
    d["d.lm_head"] = dlogits.T @ f["ln_f"]  # (V, C)
    d["d.ln_f"] = dlogits @ wte  # (T, C)
    last = f"h.{n_layers(P) - 1}.res_2"
    dres, d["transformer.ln_f.weight"], d["transformer.ln_f.bias"] = layernorm_backward(
        d["d.ln_f"], f[last], P["transformer.ln_f.weight"], f["ln_f.mean"], f["ln_f.rstd"]
    )

    causal = np.tril(np.ones((T, T)))  # (T, T): the weights above the diagonal are fixed zeros
    for l in reversed(range(n_layers(P))):
        h, w = f"h.{l}.", f"transformer.h.{l}."
        x = f["x0"] if l == 0 else f[f"h.{l - 1}.res_2"]
        # res_2 = res_1 + mlp_out: the sum hands its gradient to both terms unchanged.
        d["d." + h + "res_2"] = d["d." + h + "mlp_out"] = dres
        d[w + "mlp.c_proj.weight"] = f[h + "mlp_act"].T @ dres
        d[w + "mlp.c_proj.bias"] = dres.sum(0)
        d["d." + h + "mlp_act"] = dres @ P[w + "mlp.c_proj.weight"].T  # (T, 4C)
        d["d." + h + "mlp_pre"] = dpre = d["d." + h + "mlp_act"] * gelu_grad(f[h + "mlp_pre"])
        d[w + "mlp.c_fc.weight"] = f[h + "ln_2"].T @ dpre
        d[w + "mlp.c_fc.bias"] = dpre.sum(0)
        d["d." + h + "ln_2"] = dpre @ P[w + "mlp.c_fc.weight"].T  # (T, C)
        dx, d[w + "ln_2.weight"], d[w + "ln_2.bias"] = layernorm_backward(
            d["d." + h + "ln_2"], f[h + "res_1"], P[w + "ln_2.weight"], f[h + "ln_2.mean"], f[h + "ln_2.rstd"]
        )
        # res_1 = x + attn_proj: the stream's gradient plus what came back through ln_2.
        dres = dres + dx
        if not attention:  # res_1 = x: nothing else flows back, and attention's weights never move
            d["d." + h + "res_1"] = dres
            for name in ("ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
                         "attn.c_proj.bias"):  # fmt: skip
                d[w + name] = np.zeros_like(P[w + name])
            continue
        d["d." + h + "res_1"] = d["d." + h + "attn_proj"] = dres
        d[w + "attn.c_proj.weight"] = f[h + "attn_concat"].T @ dres
        d[w + "attn.c_proj.bias"] = dres.sum(0)
        d["d." + h + "attn_concat"] = dres @ P[w + "attn.c_proj.weight"].T  # (T, C)
        dhead = d["d." + h + "head_out"] = split_heads(d["d." + h + "attn_concat"], n_head)  # (NH, T, HS)
        att, q, k, v = f[h + "att"], f[h + "q"], f[h + "k"], f[h + "v"]
        d["d." + h + "att"] = datt = (dhead @ v.transpose(0, 2, 1)) * causal  # (NH, T, T)
        d["d." + h + "v"] = att.transpose(0, 2, 1) @ dhead  # (NH, T, HS)
        # softmax rows: dscore_s = att_s (datt_s - sum_r att_r datt_r)
        d["d." + h + "scores"] = dscores = att * (datt - (att * datt).sum(-1, keepdims=True))
        d["d." + h + "q"] = dscores @ k / np.sqrt(HS)
        d["d." + h + "k"] = dscores.transpose(0, 2, 1) @ q / np.sqrt(HS)
        dqkv = np.concatenate([merge_heads(d["d." + h + n]) for n in "qkv"], axis=1)  # (T, 3C)
        d[w + "attn.c_attn.weight"] = f[h + "ln_1"].T @ dqkv
        d[w + "attn.c_attn.bias"] = dqkv.sum(0)
        d["d." + h + "ln_1"] = dqkv @ P[w + "attn.c_attn.weight"].T  # (T, C)
        dx, d[w + "ln_1.weight"], d[w + "ln_1.bias"] = layernorm_backward(
            d["d." + h + "ln_1"], x, P[w + "ln_1.weight"], f[h + "ln_1.mean"], f[h + "ln_1.rstd"]
        )
        dres = dres + dx

    # x0 = wte[ids] + wpe[:T]: each position's row of both tables receives the stream's gradient.
    d["d.x0"] = d["d.wpe"] = dres
    dwte = d["d.lm_head"].copy()
    np.add.at(dwte, ids, dres)  # a token seen twice collects both positions' gradients
    d["transformer.wte.weight"] = dwte
    d["d.wte"] = dwte[ids]  # (T, C)
    if "transformer.wpe.weight" in P:
        dwpe = np.zeros_like(P["transformer.wpe.weight"])
        dwpe[:T] = dres
        d["transformer.wpe.weight"] = dwpe
    return loss, d
