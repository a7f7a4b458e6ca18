"""GPT-2's forward pass written out plainly in float64 numpy: the math of the model, step by step.

This is the slow obvious version beside the fast one. It shares no code with the model's kernels,
returns every intermediate under the names of the model's Trace (`forward`), and is the oracle the
model, its trace and the dashboard's numbers are tested against.

Shapes: T tokens, C = n_embd, NH heads of size HS = C / NH, V tokens in the vocabulary.
Weights are named and shaped as Hugging Face's GPT2LMHeadModel saves them; linear layers are (in, out).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tinylm.kernels.gelu import GELU_CUBIC, GELU_SCALE

from .config import LN_EPS


def layernorm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = LN_EPS):
    """Each row (..., C) to mean 0 and variance 1 (biased), then scaled and shifted per feature.
    Returns (out, mean, rstd), mean and rstd shaped (...,)."""
    mean = x.mean(-1)
    var = ((x - mean[..., None]) ** 2).mean(-1)
    rstd = 1.0 / np.sqrt(var + eps)
    return (x - mean[..., None]) * rstd[..., None] * weight + bias, mean, rstd


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU, tanh approximation (GPT-2's `gelu_new`): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1.0 + np.tanh(GELU_SCALE * (x + GELU_CUBIC * x**3)))


def softmax(x: np.ndarray) -> np.ndarray:
    """exp(x) / sum(exp(x)) along the last axis; -inf entries get probability 0."""
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def split_heads(x: np.ndarray, n_head: int) -> np.ndarray:
    """(T, C) -> (NH, T, HS): head h owns features [h*HS, (h+1)*HS)."""
    T, C = x.shape
    return x.reshape(T, n_head, C // n_head).transpose(1, 0, 2)


def merge_heads(x: np.ndarray) -> np.ndarray:
    """(NH, T, HS) -> (T, C), the inverse of split_heads."""
    NH, T, HS = x.shape
    return x.transpose(1, 0, 2).reshape(T, NH * HS)


def n_layers(params: Mapping[str, np.ndarray]) -> int:
    """How many transformer blocks the weights hold."""
    return sum(1 for name in params if name.startswith("transformer.h.") and name.endswith(".ln_1.weight"))


def forward(
    params: Mapping[str, np.ndarray],
    ids: np.ndarray,
    n_head: int,
    wpe: np.ndarray | None = None,
    eps: float = LN_EPS,
) -> dict[str, np.ndarray]:
    """Every intermediate of the forward pass over one sequence ids (T,), named as the model's Trace.
    `wpe` is the position table (block_size, C); by default the learned one in `params`."""
    P = {name: np.asarray(w, dtype=np.float64) for name, w in params.items()}
    wpe = P["transformer.wpe.weight"] if wpe is None else np.asarray(wpe, dtype=np.float64)
    ids = np.asarray(ids)
    T = len(ids)
    out: dict[str, np.ndarray] = {}

    # Embeddings: each token's row of the token table plus its position's row.
    out["wte"] = P["transformer.wte.weight"][ids]  # (T, C)
    out["wpe"] = wpe[:T]  # (T, C)
    x = out["x0"] = out["wte"] + out["wpe"]  # (T, C): the residual stream
    C = x.shape[-1]
    HS = C // n_head
    future = np.triu(np.ones((T, T), dtype=bool), k=1)  # (T, T): a token may not look ahead

    for l in range(n_layers(P)):
        h, w = f"h.{l}.", f"transformer.h.{l}."

        # Attention: LayerNorm, then per head queries, keys and values, scaled dot products, causal
        # softmax, a weighted sum of values; the heads joined and projected, added to the stream.
        ln1, out[h + "ln_1.mean"], out[h + "ln_1.rstd"] = layernorm(x, P[w + "ln_1.weight"], P[w + "ln_1.bias"], eps)
        out[h + "ln_1"] = ln1  # (T, C)
        qkv = ln1 @ P[w + "attn.c_attn.weight"] + P[w + "attn.c_attn.bias"]  # (T, 3C): q, k, v side by side
        q, k, v = (split_heads(qkv[:, i * C : (i + 1) * C], n_head) for i in range(3))  # (NH, T, HS) each
        out[h + "q"], out[h + "k"], out[h + "v"] = q, k, v
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(HS)  # (NH, T, T): query row, key column
        scores[:, future] = -np.inf
        out[h + "scores"] = scores
        att = out[h + "att"] = softmax(scores)  # (NH, T, T): each row sums to 1
        out[h + "head_out"] = att @ v  # (NH, T, HS)
        out[h + "attn_concat"] = merge_heads(out[h + "head_out"])  # (T, C)
        out[h + "attn_proj"] = out[h + "attn_concat"] @ P[w + "attn.c_proj.weight"] + P[w + "attn.c_proj.bias"]
        x = out[h + "res_1"] = x + out[h + "attn_proj"]  # (T, C)

        # MLP: LayerNorm, widen to 4C, GELU, back to C, added to the stream.
        ln2, out[h + "ln_2.mean"], out[h + "ln_2.rstd"] = layernorm(x, P[w + "ln_2.weight"], P[w + "ln_2.bias"], eps)
        out[h + "ln_2"] = ln2  # (T, C)
        out[h + "mlp_pre"] = ln2 @ P[w + "mlp.c_fc.weight"] + P[w + "mlp.c_fc.bias"]  # (T, 4C)
        out[h + "mlp_act"] = gelu(out[h + "mlp_pre"])  # (T, 4C)
        out[h + "mlp_out"] = out[h + "mlp_act"] @ P[w + "mlp.c_proj.weight"] + P[w + "mlp.c_proj.bias"]  # (T, C)
        x = out[h + "res_2"] = x + out[h + "mlp_out"]  # (T, C)

    # Head: a last LayerNorm, then the token table again (tied weights) scores every vocabulary entry.
    out["ln_f"], out["ln_f.mean"], out["ln_f.rstd"] = layernorm(
        x, P["transformer.ln_f.weight"], P["transformer.ln_f.bias"], eps
    )
    out["logits"] = out["ln_f"] @ P["transformer.wte.weight"].T  # (T, V)
    out["probs"] = softmax(out["logits"])  # (T, V): the next token's distribution at each position
    return out


def logits(
    params: Mapping[str, np.ndarray], ids: np.ndarray, n_head: int, wpe: np.ndarray | None = None, eps: float = LN_EPS
):
    """Logits (B, T, V) for a batch of sequences ids (B, T)."""
    return np.stack([forward(params, row, n_head, wpe, eps)["logits"] for row in np.atleast_2d(ids)])


def loss(
    params, ids: np.ndarray, targets: np.ndarray, n_head: int, wpe: np.ndarray | None = None, eps: float = LN_EPS
) -> float:
    """Mean cross-entropy of the next-token targets (B, T): -log p(target), averaged."""
    z = logits(params, ids, n_head, wpe, eps)
    logp = z - z.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    return float(-np.take_along_axis(logp, np.atleast_2d(targets)[..., None], -1).mean())
