"""How one cell of a backward stage was computed: the chain rule with the backward trace's own operands."""

from __future__ import annotations

import math

import numpy as np

from .backstages import BackStage
from .explain import Explanation, dot_summary


def num(x: float) -> str:
    """A gradient at a readable precision: they are often far below 1e-4."""
    x = float(x)
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        return f"{x:.4f}"
    return f"{x:.3e}"


def op(x: float) -> str:
    """A number as the right operand of + − ×: negatives in parentheses."""
    return f"({num(x)})" if x < 0 else num(x)


def _layers(bt) -> int:
    return sum(1 for n in bt.arrays if n.endswith(".mlp_pre"))


def _w(params, name: str) -> np.ndarray:
    return params[f"transformer.{name}"]


def _dot(lines: list[str], a, b, a_name: str, b_name: str, scale: float = 1.0) -> float:
    more, total = dot_summary(np.asarray(a), np.asarray(b), a_name, b_name, top=3, fmt=num)
    lines += more
    if scale != 1.0:
        lines.append(f"× {num(scale)} = {num(total * scale)}")
    return total * scale


def _ln_back(lines: list[str], dy, x, gamma, mean: float, rstd: float, c: int, name: str) -> float:
    """One input cell of a LayerNorm's backward: rstd·(dx̂_c − mean dx̂ − x̂_c·mean(dx̂·x̂)), dx̂ = dy·γ."""
    dy, x, gamma = (np.asarray(a, dtype=np.float64) for a in (dy, x, gamma))
    xhat = (x - mean) * rstd
    dxhat = dy * gamma
    m1, m2 = float(dxhat.mean()), float((dxhat * xhat).mean())
    term = rstd * (dxhat[c] - m1 - xhat[c] * m2)
    lines += [
        f"back through {name}: x̂_c = (x_c − mean)·rstd = {num(xhat[c])}, rstd = {num(rstd)}",
        f"dx̂_c = dy_c·γ_c = {num(dy[c])} × {op(gamma[c])} = {num(dxhat[c])}",
        f"mean(dx̂) = {num(m1)}, mean(dx̂·x̂) = {num(m2)}",
        f"rstd·(dx̂_c − mean dx̂ − x̂_c·mean(dx̂·x̂)) = {num(term)}",
    ]
    return float(term)


def _stream(lines, bt, params, l_next: int, t: int, c: int) -> float:
    """d.res₂ of block l_next − 1 (or d.x0): the next block's d.res₁ plus its ln₁ backward."""
    f = bt.forward
    h = f"h.{l_next}."
    base = float(bt["d." + h + "res_1"][t, c])
    x = f["x0"] if l_next == 0 else f[f"h.{l_next - 1}.res_2"]
    lines.append(f"the stream from block {l_next}: d.res₁[{t},{c}] = {num(base)}")
    if "d." + h + "ln_1" not in bt:  # an MLP-only block: res₁ is its input, so the gradient passes unchanged
        lines.append(f"block {l_next} has no attention (MLP only): nothing else flows back")
        return base
    term = _ln_back(
        lines,
        bt["d." + h + "ln_1"][t],
        x[t],
        _w(params, h + "ln_1.weight"),
        float(f[h + "ln_1.mean"][t]),
        float(f[h + "ln_1.rstd"][t]),
        c,
        f"LayerNorm 1 of block {l_next}",
    )
    lines.append(f"sum: {num(base)} + {op(term)} = {num(base + term)}")
    return base + term


def explain_back(stage: BackStage, bt, params, row: int, col: int, head: int = 0) -> Explanation:
    """The chain-rule step that made gradient cell (row, col) of `stage` (head: of a per-head stage),
    with its operands; `value` is recomputed in float64 from them."""
    f, l, key = bt.forward, stage.layer, stage.key
    h = f"h.{l}." if l is not None else ""
    d = lambda name: bt["d." + h + name]  # noqa: E731
    T = len(bt.ids)
    lines: list[str] = []
    if key == "loss":
        y = int(bt.targets[row])
        p = float(f["probs"][row, y])
        lines.append(f"target y = id {y}; p[{row}, y] = {num(p)}")
        value = -math.log(p)
        lines.append(f"−log {num(p)} = {num(value)}; L = mean of the {T} = {num(bt.loss)}")
    elif key == "logits":
        y = int(bt.targets[row])
        p = float(f["probs"][row, col])
        one = 1.0 if col == y else 0.0
        value = (p - one) / T
        lines.append(f"(p[{row},{col}] − onehot) / T = ({num(p)} − {one:g}) / {T} = {num(value)}")
    elif key == "lm_head":
        value = _dot(lines, bt["d.logits"][:, row], f["ln_f"][:, col], "d.logits[t,v]", "ln_f[t,c]")
    elif key == "ln_f":
        value = _dot(lines, bt["d.logits"][row], _w(params, "wte.weight")[:, col], "d.logits[t,v]", "wte[v,c]")
    elif key == "res_2":
        if l == _layers(bt) - 1:
            value = _ln_back(
                lines,
                bt["d.ln_f"][row],
                f[f"h.{l}.res_2"][row],
                _w(params, "ln_f.weight"),
                float(f["ln_f.mean"][row]),
                float(f["ln_f.rstd"][row]),
                col,
                "the final LayerNorm",
            )
        else:
            value = _stream(lines, bt, params, l + 1, row, col)
    elif key in ("mlp_out",):
        value = float(d("res_2")[row, col])
        lines.append(f"= d.res₂[{row},{col}] = {num(value)}")
    elif key == "w_mlp_proj":
        value = _dot(lines, f[h + "mlp_act"][:, row], d("mlp_out")[:, col], "act[t,i]", "d.mlp_out[t,j]")
    elif key == "mlp_act":
        W = _w(params, h + "mlp.c_proj.weight")
        value = _dot(lines, d("mlp_out")[row], W[col], "d.mlp_out[t,j]", "W_proj[i,j]")
    elif key == "mlp_pre":
        from tinylm.core import reference_backward

        x = float(f[h + "mlp_pre"][row, col])
        slope = float(reference_backward.gelu_grad(np.float64(x)))
        da = float(d("mlp_act")[row, col])
        value = da * slope
        lines.append(f"gelu′({num(x)}) = {num(slope)}")
        lines.append(f"d.act × gelu′ = {num(da)} × {op(slope)} = {num(value)}")
    elif key == "w_mlp_fc":
        value = _dot(lines, f[h + "ln_2"][:, row], d("mlp_pre")[:, col], "ln₂[t,i]", "d.pre[t,j]")
    elif key == "ln_2":
        W = _w(params, h + "mlp.c_fc.weight")
        value = _dot(lines, d("mlp_pre")[row], W[col], "d.pre[t,j]", "W_fc[i,j]")
    elif key == "res_1":
        base = float(d("res_2")[row, col])
        lines.append(f"the stream: d.res₂[{row},{col}] = {num(base)}")
        term = _ln_back(
            lines,
            d("ln_2")[row],
            f[h + "res_1"][row],
            _w(params, h + "ln_2.weight"),
            float(f[h + "ln_2.mean"][row]),
            float(f[h + "ln_2.rstd"][row]),
            col,
            "LayerNorm 2",
        )
        value = base + term
        lines.append(f"sum: {num(base)} + {op(term)} = {num(value)}")
    elif key == "w_attn_proj":
        value = _dot(lines, f[h + "attn_concat"][:, row], d("res_1")[:, col], "concat[t,i]", "d.res₁[t,j]")
    elif key == "attn_concat":
        W = _w(params, h + "attn.c_proj.weight")
        value = _dot(lines, d("res_1")[row], W[col], "d.res₁[t,j]", "W_o[i,j]")
    elif key == "att":
        if col > row:
            value = 0.0
            lines.append("above the diagonal: a fixed zero (the causal mask), no gradient")
        else:
            value = _dot(lines, d("head_out")[head, row], f[h + "v"][head, col], "d.out[t,j]", "V[s,j]")
    elif key == "scores":
        a, da = f[h + "att"][head, row].astype(np.float64), d("att")[head, row].astype(np.float64)
        inner = float((a * da).sum())
        value = float(a[col] * (da[col] - inner))
        lines.append(f"Σ_s att·d.att over row {row} = {num(inner)}")
        lines.append(f"att × (d.att − Σ) = {num(a[col])} × ({num(da[col])} − {op(inner)}) = {num(value)}")
    elif key in ("q", "k"):
        hs = f[h + "q"].shape[2]
        s = 1.0 / math.sqrt(hs)
        ds = d("scores")[head]
        if key == "q":
            value = _dot(lines, ds[row], f[h + "k"][head, :, col], "d.scores[t,s]", "K[s,j]", s)
        else:
            value = _dot(lines, ds[:, row], f[h + "q"][head, :, col], "d.scores[t,s]", "Q[t,j]", s)
    elif key == "v":
        value = _dot(lines, f[h + "att"][head, :, row], d("head_out")[head, :, col], "att[t,s]", "d.out[t,j]")
    elif key in ("w_attn", "ln_1"):
        dqkv = np.concatenate([_merge(d(n)) for n in "qkv"], axis=1)  # (T, 3C)
        if key == "w_attn":
            value = _dot(lines, f[h + "ln_1"][:, row], dqkv[:, col], "ln₁[t,i]", "dQKV[t,j]")
        else:
            W = _w(params, h + "attn.c_attn.weight")
            value = _dot(lines, dqkv[row], W[col], "dQKV[t,j]", "W_qkv[i,j]")
    elif key == "x0":
        value = _stream(lines, bt, params, 0, row, col)
    elif key == "wte":
        tok = int(bt.ids[row])
        same = [t for t in range(T) if int(bt.ids[t]) == tok]
        parts = [float(bt["d.x0"][t, col]) for t in same]
        head_part = float(bt["d.lm_head"][tok, col])
        lines.append(f"token id {tok} is at positions {same}: d.x0 = " + " + ".join(num(p) for p in parts))
        lines.append(f"the LM head's share dW_head[{tok},{col}] = {num(head_part)}")
        value = sum(parts) + head_part
        lines.append(f"sum = {num(value)}")
    elif key == "wpe":
        value = float(bt["d.x0"][row, col])
        lines.append(f"= d.x0[{row},{col}] = {num(value)}  (each position is used once)")
    else:
        raise KeyError(key)
    return Explanation(lines, float(value))


def _merge(x: np.ndarray) -> np.ndarray:
    """(NH, T, HS) -> (T, C)."""
    NH, T, HS = x.shape
    return x.transpose(1, 0, 2).reshape(T, NH * HS)


def adamw_text(u) -> str:
    """The AdamW step as lines: each quantity with the numbers it came from."""
    clip = (
        f"clip: ‖g‖ = {u.grad_norm:.4f} > {u.grad_clip:g}, factor {u.grad_clip:g}/(‖g‖+1e-6) = {u.clip_factor:.4f}"
        if u.clip_factor != 1.0
        else f"clip: ‖g‖ = {u.grad_norm:.4f} ≤ {u.grad_clip:g}: none"
    )
    decay = (
        f"decay: −lr·wd·w = −{u.lr:.3g}×{u.weight_decay:g}×{num(u.weight_before)} = {num(u.decay_change)}"
        if u.decayed
        else "decay: none (biases and LayerNorm parameters do not decay)"
    )
    return "\n".join(
        [
            f"AdamW step {u.step} of {u.name}{list(u.index)}   (u: back, a: apply)",
            f"loss on this window {u.loss_before:.5f} → {u.loss_after:.5f} (every weight takes its step)",
            f"w {num(u.weight_before)} → {num(u.weight_after)} (change {num(u.change)})",
            f"g = {num(u.grad)}   {clip}   ĝ = {num(u.grad_clipped)}",
            f"lr = {u.lr:.4g} ({u.phase}; peak {u.learning_rate:g}, warmup {u.warmup_steps}, "
            f"floor {u.min_lr:g} after {u.decay_steps})",
            f"m = {u.beta1:g}·{op(u.m_prev)} + {1 - u.beta1:.2g}·ĝ = {num(u.m)}",
            f"v = {u.beta2:g}·{op(u.v_prev)} + {1 - u.beta2:.2g}·ĝ² = {num(u.v)}",
            f"m̂ = m/(1−β1^{u.step}) = m/{u.bias_correction1:.4g} = {num(u.m_hat)}",
            f"v̂ = v/(1−β2^{u.step}) = v/{u.bias_correction2:.4g} = {num(u.v_hat)}",
            f"adam −lr·m̂/(√v̂+{u.eps:g}) = {num(u.adam_change)}   {decay}",
        ]
    )


def check_text(check) -> str:
    """A finite-difference check as two lines: the float64 estimate, and backprop's value against it."""
    return (
        f"finite difference (float64, step {check.step:g}): {num(check.estimate)}\n"
        f"backprop {num(check.backprop)} − estimate = {check.difference:.2e}"
    )
