"""How one cell of a stage was computed, as text built from the trace's and the weights' own numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .stages import Stage, layer_input, short_float
from .widgets.heatmap import visible


@dataclass
class Explanation:
    """Lines of text, and the cell's value recomputed (float64) from the inputs the lines show."""

    lines: list[str]
    value: float


def num(x: float) -> str:
    """A number at a readable precision."""
    if math.isinf(x):
        return "−∞" if x < 0 else "+∞"
    return f"{x:.4f}"


def op(x: float) -> str:
    """A number as the right operand of + − ×: negatives in parentheses, so '− (−0.5)' reads right."""
    return f"({num(x)})" if x < 0 else num(x)


def wrap_numbers(prefix: str, values, width: int = 60) -> list[str]:
    """'prefix v0 v1 ...' wrapped to width, continuation lines indented under the first number."""
    lines, line = [], prefix
    for v in values:
        item = f" {float(v):+.4f}"  # signed, so columns of numbers line up
        if len(line) + len(item) > width and line.strip() != prefix.strip():
            lines.append(line)
            line = " " * len(prefix)
        line += item
    return lines + [line]


def dot_summary(
    a: np.ndarray, w: np.ndarray, a_name: str, w_name: str, top: int = 5, fmt=num
) -> tuple[list[str], float]:
    """Σ a·w over all terms, listing the largest contributions (a full list would not fit); fmt writes a number."""
    a, w = a.astype(np.float64), w.astype(np.float64)
    terms = a * w
    order = np.argsort(-np.abs(terms))[:top]
    lines = [f"largest of the {len(terms)} terms {a_name}·{w_name}:"]
    lines += [f"  [{i}] {fmt(a[i])} × {f'({fmt(w[i])})' if w[i] < 0 else fmt(w[i])} = {fmt(terms[i])}" for i in order]
    total = float(terms.sum())
    lines.append(f"sum of all {len(terms)} terms = {fmt(total)}")
    return lines, total


def _token(trace, t: int) -> str:
    return f"'{visible(trace.tokens[t])}'"


def _p(params: dict, name: str) -> np.ndarray:
    return params[f"transformer.{name}"]


def _linear(stage: Stage, trace, params, row, col, head, width=60, **_) -> Explanation:
    """Q, K, V, projections and the MLP's matmuls: one input row times one weight column plus a bias."""
    l, C = stage.layer, trace["x0"].shape[1]
    hs = C // trace[f"h.{l}.q"].shape[0] if f"h.{l}.q" in trace else 0  # head size (no heads: MLP only)
    source, weight, j, name = {
        "q": ("ln_1", "attn.c_attn", head * hs + col, "W_q"),
        "k": ("ln_1", "attn.c_attn", C + head * hs + col, "W_k"),
        "v": ("ln_1", "attn.c_attn", 2 * C + head * hs + col, "W_v"),
        "attn_proj": ("attn_concat", "attn.c_proj", col, "W_o"),
        "mlp_pre": ("ln_2", "mlp.c_fc", col, "W_fc"),
        "mlp_out": ("mlp_act", "mlp.c_proj", col, "W_proj"),
    }[stage.key]
    x = trace[f"h.{l}.{source}"][row]
    W, b = _p(params, f"h.{l}.{weight}.weight")[:, j], float(_p(params, f"h.{l}.{weight}.bias")[j])
    lines = [f"row {_token(trace, row)} of {source} times column {j} of {weight}.weight, plus bias {j}"]
    terms, total = dot_summary(x, W, source, name)
    value = total + b
    lines += terms + [f"{num(total)} + bias {op(b)} = {num(value)}"]
    return Explanation(lines, value)


def _layernorm(stage: Stage, trace, params, row, col, head, width=60, **_) -> Explanation:
    l = stage.layer
    if stage.key == "ln_f":
        x, prefix, pname = layer_input(trace, None), "ln_f", "ln_f"
    elif stage.key == "ln_1":
        x, prefix, pname = layer_input(trace, l), f"h.{l}.ln_1", f"h.{l}.ln_1"
    else:
        x, prefix, pname = trace[f"h.{l}.res_1"], f"h.{l}.ln_2", f"h.{l}.ln_2"
    xr = x[row].astype(np.float64)
    mean, var = float(xr.mean()), float(xr.var())
    eps = trace.layer_norm_epsilon
    rstd = 1.0 / math.sqrt(var + eps)
    g, b = float(_p(params, f"{pname}.weight")[col]), float(_p(params, f"{pname}.bias")[col])
    value = (float(xr[col]) - mean) * rstd * g + b
    return Explanation(
        [
            f"input x[{_token(trace, row)}, {col}] = {num(xr[col])}",
            f"row mean = {num(mean)}   (trace: {num(float(trace[prefix + '.mean'][row]))})",
            f"row var = {var:.4f} → rstd = 1/√(var + {short_float(eps)}) = {rstd:.4f}"
            f"   (trace: {float(trace[prefix + '.rstd'][row]):.4f})",
            f"γ[{col}] = {num(g)}   β[{col}] = {num(b)}",
            f"({num(xr[col])} − {op(mean)}) × {rstd:.4f} × {op(g)} + {op(b)} = {num(value)}",
        ],
        value,
    )


def _scores(stage: Stage, trace, params, row, col, head, width=60, **_) -> Explanation:
    l = stage.layer
    q, k = trace[f"h.{l}.q"][head, row].astype(np.float64), trace[f"h.{l}.k"][head, col].astype(np.float64)
    hs = q.shape[0]
    if col > row:
        return Explanation(
            [
                f"masked: {_token(trace, row)} (position {row}) may not look at a later token "
                f"{_token(trace, col)} (position {col}).",
                "score = −∞, so its softmax weight is exactly 0.",
            ],
            -math.inf,
        )
    products = q * k
    dot = float(products.sum())
    value = dot / math.sqrt(hs)
    return Explanation(
        wrap_numbers(f"query {_token(trace, row)} q =", q, width)
        + wrap_numbers(f"key   {_token(trace, col)} k =", k, width)
        + wrap_numbers("q ⊙ k           =", products, width)
        + [
            f"q·k = Σ (q ⊙ k) = {num(dot)}",
            f"scaled: {num(dot)} / √{hs} = {num(dot)} / {math.sqrt(hs):.4f} = {num(value)}",
        ],
        value,
    )


def _softmax_row(z: np.ndarray, col: int) -> tuple[np.ndarray, float, float, float]:
    """exp(z − max), its sum, the max, and the weight of `col`."""
    m = float(z.max())
    e = np.exp(z - m)
    s = float(e.sum())
    return e, s, m, float(e[col]) / s


def _att(stage: Stage, trace, params, row, col, head, width=60, **_) -> Explanation:
    if col > row:
        return Explanation(
            [
                f"{_token(trace, row)} cannot attend to the later token {_token(trace, col)}:",
                "its score is −∞ and exp(−∞) = 0, so the weight is 0.",
            ],
            0.0,
        )
    z = trace[f"h.{stage.layer}.scores"][head, row, : row + 1].astype(np.float64)
    e, s, m, value = _softmax_row(z, col)
    return Explanation(
        wrap_numbers(f"scores of row {_token(trace, row)} =", z, width)
        + wrap_numbers(f"exp(s − max), max = {num(m)}:", e, width)
        + [
            f"normaliser Σ exp(s − max) = {s:.4f}",
            f"att = exp({num(z[col])} − {op(m)}) / {s:.4f} = {e[col]:.4f} / {s:.4f} = {value:.4f}",
        ],
        value,
    )


def _head_out(stage: Stage, trace, params, row, col, head, width=60, **_) -> Explanation:
    l = stage.layer
    att = trace[f"h.{l}.att"][head, row, : row + 1].astype(np.float64)
    v = trace[f"h.{l}.v"][head, : row + 1, col].astype(np.float64)
    terms = att * v
    lines = [f"Σ over the {row + 1} visible tokens j of att[{_token(trace, row)}, j] × V[j, {col}]:"]
    for j in np.argsort(-np.abs(terms))[:8]:
        lines.append(f"  {_token(trace, int(j)):>6} {att[j]:.4f} × {op(v[j])} = {num(terms[j])}")
    value = float(terms.sum())
    return Explanation(lines + [f"sum = {num(value)}"], value)


def _concat(stage: Stage, trace, params, row, col, head, width=60, **_) -> Explanation:
    out = trace[f"h.{stage.layer}.head_out"]
    hs = out.shape[2]
    h, d = divmod(col, hs)
    value = float(out[h, row, d])
    return Explanation(
        [
            f"channel {col} = head {h}'s output, dimension {d} (HS = {hs})",
            f"= out[{h}, {_token(trace, row)}, {d}] = {num(value)}",
        ],
        value,
    )


def _add(stage: Stage, trace, params, row, col, head, width=60, **_) -> Explanation:
    l = stage.layer
    if stage.key == "x0":
        a_name, a, b_name, b = "tok", trace["wte"], "pos", trace["wpe"]
    elif stage.key == "res_1":
        a_name, a, b_name, b = "x", layer_input(trace, l), "proj", trace[f"h.{l}.attn_proj"]
    else:
        a_name, a, b_name, b = "x₁", trace[f"h.{l}.res_1"], "mlp", trace[f"h.{l}.mlp_out"]
    x, y = float(a[row, col]), float(b[row, col])
    return Explanation(
        [
            f"{a_name}[{_token(trace, row)}, {col}] + {b_name}[{_token(trace, row)}, {col}]",
            f"= {num(x)} + {op(y)} = {num(x + y)}",
        ],
        x + y,
    )


def _gelu(stage: Stage, trace, params, row, col, head, width=60, **_) -> Explanation:
    pre = float(trace[f"h.{stage.layer}.mlp_pre"][row, col])
    from tinylm.core import GELU_CUBIC, GELU_SCALE  # loaded already: there is a trace to explain

    inner = GELU_SCALE * (pre + GELU_CUBIC * pre**3)
    t = math.tanh(inner)
    value = 0.5 * pre * (1 + t)
    return Explanation(
        [
            f"pre = {num(pre)}",
            f"√(2/π)·(pre + {GELU_CUBIC}·pre³) = {num(inner)}",
            f"tanh(…) = {num(t)}",
            f"½ × {num(pre)} × (1 {'+' if t >= 0 else '−'} {abs(t):.4f}) = {num(value)}",
        ],
        value,
    )


def _embedding(stage: Stage, trace, params, row, col, head, width=60, **_) -> Explanation:
    if stage.key == "tokenize":
        tid = int(trace.ids[col])
        return Explanation(
            [f"position {col}: token {_token(trace, col)} → id {tid}", f"the prompt has {len(trace.ids)} tokens"],
            float(tid),
        )
    if stage.key == "wte":
        tid = int(trace.ids[row])
        table = _p(params, "wte.weight")
        value = float(table[tid, col])
        return Explanation(
            [
                f"token {_token(trace, row)} has id {tid}",
                f"wte[{tid}, {col}] = {num(value)}   (wte is V×C = {table.shape[0]}×{table.shape[1]})",
            ],
            value,
        )
    table = params.get("transformer.wpe.weight")
    learned = table is not None
    value = float(table[row, col]) if learned else float(trace["wpe"][row, col])
    return Explanation(
        [
            f"position {row} ({_token(trace, row)})",
            f"wpe[{row}, {col}] = {num(value)}   ({'learned' if learned else 'fixed sine/cosine'} table)",
        ],
        value,
    )


def _logits(stage: Stage, trace, params, row, col, head, vocab=None, **_) -> Explanation:
    x, w = trace["ln_f"][row], _p(params, "wte.weight")[col]
    name = f"'{visible(vocab[col])}'" if vocab else str(col)
    lines = [f"score of next token {name} (id {col}) after {_token(trace, row)}: ln_f row · wte row {col}"]
    terms, value = dot_summary(x, w, "ln_f", "wte")
    return Explanation(lines + terms, value)


def _probs(stage: Stage, trace, params, row, col, head, vocab=None, **_) -> Explanation:
    row = len(trace.ids) - 1 if stage.key == "chosen" else row
    z = trace["logits"][row].astype(np.float64)
    e, s, m, value = _softmax_row(z, col)
    label = (lambda i: f"'{visible(vocab[i])}'") if vocab else str
    rank = int((z > z[col]).sum()) + 1
    best = int(np.argmax(z))
    lines = [
        f"next token {label(col)} after {_token(trace, row)}: logit z = {num(z[col])}",
        f"max logit {num(m)} ({label(best)}); Σ exp(z − max) over {len(z)} tokens = {s:.4f}",
        f"p = exp({num(z[col])} − {op(m)}) / {s:.4f} = {value:.4f}   (rank {rank} of {len(z)})",
    ]
    if stage.key == "chosen":
        lines.append(f"greedy choice: {label(best)} with p = {e[best] / s:.4f}")
    return Explanation(lines, value)


_EXPLAINERS = {
    "tokenize": _embedding,
    "wte": _embedding,
    "wpe": _embedding,
    "x0": _add,
    "ln_1": _layernorm,
    "ln_2": _layernorm,
    "ln_f": _layernorm,
    "q": _linear,
    "k": _linear,
    "v": _linear,
    "attn_proj": _linear,
    "mlp_pre": _linear,
    "mlp_out": _linear,
    "scores": _scores,
    "att": _att,
    "head_out": _head_out,
    "attn_concat": _concat,
    "res_1": _add,
    "res_2": _add,
    "mlp_act": _gelu,
    "logits": _logits,
    "probs": _probs,
    "chosen": _probs,
}


def explain(
    stage: Stage,
    trace,
    params: dict,
    row: int,
    col: int,
    head: int = 0,
    vocab: list[str] | None = None,
    width: int = 60,
) -> Explanation:
    """How the cell (row, col) of `stage` (for head `head`) was computed, with the actual numbers."""
    return _EXPLAINERS[stage.key](stage, trace, params, row, col, head, vocab=vocab, width=width)
