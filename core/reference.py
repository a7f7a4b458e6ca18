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
    nudge: tuple[str, tuple, float] | None = None,
    ablate: Mapping[str, str] | None = None,
    attention: bool = True,
) -> dict[str, np.ndarray]:
    """Every intermediate of the forward pass over one sequence ids (T,), named as the model's Trace.
    `wpe` is the position table (block_size, C); by default the learned one in `params`.
    `nudge` (name, index, delta) adds delta to one cell of the named intermediate as soon as it is
    computed, so everything after it sees the change (a finite difference of that intermediate);
    "lm_head" names the token table as the LM head reads it.
    `ablate` knocks parts out: {"1.3": mode} head 3 of layer 1 (its weighted sum of values),
    {"1.attn": mode} layer 1's attention branch (after c_proj), {"1.mlp": mode} its MLP branch;
    mode "zero" puts 0 in their place, "mean" their mean over the positions.
    `attention` False: an MLP-only model, each block its MLP alone (no attention intermediates;
    res_1 is the block's input)."""
    ablate = dict(ablate or {})

    def knock(key: str, value: np.ndarray) -> np.ndarray:
        """value (T, width) replaced as ablate[key] says, or unchanged."""
        mode = ablate.get(key)
        if mode is None:
            return value
        return np.zeros_like(value) if mode == "zero" else np.broadcast_to(value.mean(0), value.shape).copy()

    P = {name: np.asarray(w, dtype=np.float64) for name, w in params.items()}
    wpe = P["transformer.wpe.weight"] if wpe is None else np.asarray(wpe, dtype=np.float64)
    ids = np.asarray(ids)
    T = len(ids)
    out: dict[str, np.ndarray] = {}

    def put(name: str, value: np.ndarray) -> np.ndarray:
        """out[name] = value, nudged if asked; returns what the next step reads."""
        if nudge is not None and nudge[0] == name:
            value = np.array(value, dtype=np.float64)
            value[nudge[1]] += nudge[2]
        out[name] = value
        return value

    # Embeddings: each token's row of the token table plus its position's row.
    x = put("x0", put("wte", P["transformer.wte.weight"][ids]) + put("wpe", wpe[:T]))  # (T, C): the stream
    C = x.shape[-1]
    HS = C // n_head
    future = np.triu(np.ones((T, T), dtype=bool), k=1)  # (T, T): a token may not look ahead

    for l in range(n_layers(P)):
        h, w = f"h.{l}.", f"transformer.h.{l}."

        if not attention:  # an MLP-only block: the stream goes on to the MLP unchanged
            x = put(h + "res_1", x)
        else:
            # Attention: LayerNorm, then per head queries, keys and values, scaled dot products, causal
            # softmax, a weighted sum of values; the heads joined and projected, added to the stream.
            ln1, out[h + "ln_1.mean"], out[h + "ln_1.rstd"] = layernorm(
                x, P[w + "ln_1.weight"], P[w + "ln_1.bias"], eps
            )
            ln1 = put(h + "ln_1", ln1)  # (T, C)
            qkv = ln1 @ P[w + "attn.c_attn.weight"] + P[w + "attn.c_attn.bias"]  # (T, 3C): q, k, v side by side
            q, k, v = (put(h + n, split_heads(qkv[:, i * C : (i + 1) * C], n_head)) for i, n in enumerate("qkv"))
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(HS)  # (NH, T, T): query row, key column
            scores[:, future] = -np.inf
            scores = put(h + "scores", scores)
            att = put(h + "att", softmax(scores))  # (NH, T, T): each row sums to 1
            head_out = np.stack([knock(f"{l}.{i}", hv) for i, hv in enumerate(att @ v)])
            head_out = put(h + "head_out", head_out)  # (NH, T, HS)
            concat = put(h + "attn_concat", merge_heads(head_out))  # (T, C)
            proj = concat @ P[w + "attn.c_proj.weight"] + P[w + "attn.c_proj.bias"]
            proj = put(h + "attn_proj", knock(f"{l}.attn", proj))
            x = put(h + "res_1", x + proj)  # (T, C)

        # MLP: LayerNorm, widen to 4C, GELU, back to C, added to the stream.
        ln2, out[h + "ln_2.mean"], out[h + "ln_2.rstd"] = layernorm(x, P[w + "ln_2.weight"], P[w + "ln_2.bias"], eps)
        ln2 = put(h + "ln_2", ln2)  # (T, C)
        pre = put(h + "mlp_pre", ln2 @ P[w + "mlp.c_fc.weight"] + P[w + "mlp.c_fc.bias"])  # (T, 4C)
        act = put(h + "mlp_act", gelu(pre))  # (T, 4C)
        mlp = put(h + "mlp_out", knock(f"{l}.mlp", act @ P[w + "mlp.c_proj.weight"] + P[w + "mlp.c_proj.bias"]))
        x = put(h + "res_2", x + mlp)  # (T, C)

    # Head: a last LayerNorm, then the token table again (tied weights) scores every vocabulary entry.
    lnf, out["ln_f.mean"], out["ln_f.rstd"] = layernorm(
        x, P["transformer.ln_f.weight"], P["transformer.ln_f.bias"], eps
    )
    lnf = put("ln_f", lnf)
    head = put("lm_head", P["transformer.wte.weight"])  # (V, C)
    del out["lm_head"]  # the weights themselves, not an intermediate
    logits = put("logits", lnf @ head.T)  # (T, V)
    out["probs"] = softmax(logits)  # (T, V): the next token's distribution at each position
    return out


def logits(
    params: Mapping[str, np.ndarray],
    ids: np.ndarray,
    n_head: int,
    wpe: np.ndarray | None = None,
    eps: float = LN_EPS,
    nudge: tuple[str, tuple, float] | None = None,
    attention: bool = True,
):
    """Logits (B, T, V) for a batch of sequences ids (B, T); nudge and attention as in forward, in every row."""
    rows = np.atleast_2d(ids)
    return np.stack([forward(params, row, n_head, wpe, eps, nudge, attention=attention)["logits"] for row in rows])


def loss(
    params,
    ids: np.ndarray,
    targets: np.ndarray,
    n_head: int,
    wpe: np.ndarray | None = None,
    eps: float = LN_EPS,
    nudge: tuple[str, tuple, float] | None = None,
    attention: bool = True,
) -> float:
    """Mean cross-entropy of the next-token targets (B, T): -log p(target), averaged."""
    z = logits(params, ids, n_head, wpe, eps, nudge, attention)
    logp = z - z.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    return float(-np.take_along_axis(logp, np.atleast_2d(targets)[..., None], -1).mean())
