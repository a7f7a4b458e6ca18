"""A backward trace: every intermediate gradient of one training window, computed by the model's kernels.

The forward half is the model's Trace of the window; the backward half runs the same kernels, in the
same order, as GPT.backward does when training, but writes each stage into its own buffer instead
of the shared scratch, so every gradient can be shown. Names mirror the Trace with a `d.` prefix
(`d.logits`, `d.h.0.scores`, ...); weight gradients keep their checkpoint names. reference_backward
is the float64 oracle, `finite_difference` the check of one cell against the loss itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import reference
from .errors import ConfigError
from .trace import Trace, trace

FD_STEP = 1e-5  # central-difference step: float64 truncation (~step^2) and rounding (~1e-16/step) both small


@dataclass
class BackTrace:
    """Every gradient of the mean cross-entropy of one window (B = 1), and the forward trace it came from."""

    forward: Trace  # the forward pass over ids
    targets: np.ndarray  # (T,) the next token at each position
    loss: float  # mean over the T positions of -log p(target)
    losses: np.ndarray  # (T,) -log p(target) at each position
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # "d.<trace name>" -> gradient
    grads: dict[str, np.ndarray] = field(default_factory=dict)  # checkpoint name -> weight gradient

    @property
    def ids(self) -> np.ndarray:
        return self.forward.ids

    @property
    def tokens(self) -> list[str]:
        return self.forward.tokens

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name] if name in self.arrays else self.grads[name]

    def __contains__(self, name: str) -> bool:
        return name in self.arrays or name in self.grads


def prompt_window(model, prompt) -> tuple[np.ndarray, np.ndarray]:
    """(ids, targets) of a prompt read as a training window: targets are the prompt shifted by one,
    so the last token is only a target; keeps the last block_size + 1 tokens."""
    if isinstance(prompt, str):
        if model.tokenizer is None:
            raise ConfigError("this model has no tokenizer: pass token ids instead of text")
        tokens = np.asarray(model.tokenizer.encode(prompt), dtype=np.int64)
    else:
        tokens = np.asarray(prompt, dtype=np.int64).reshape(-1)
    tokens = tokens[-(model.config.block_size + 1) :]
    if tokens.size < 2:
        raise ConfigError("a training window needs at least 2 tokens (each token's target is the next one)")
    return tokens[:-1].copy(), tokens[1:].copy()


def _merge_heads(x: np.ndarray) -> np.ndarray:
    """(NH, T, HS) -> (T, C)."""
    NH, T, HS = x.shape
    return x.transpose(1, 0, 2).reshape(T, NH * HS)


def backtrace(model, ids, targets) -> BackTrace:
    """The forward trace of ids (T,) and every gradient of the mean cross-entropy of targets (T,)."""
    ids = model.encode_prompt(ids)
    targets = np.ascontiguousarray(targets, dtype=np.int64).reshape(-1)
    if targets.shape != ids.shape:
        raise ConfigError(f"targets must be one per token: {ids.size} tokens, {targets.size} targets")
    if targets.min() < 0 or targets.max() >= model.config.vocab_size:
        raise ConfigError(f"targets must be in [0, {model.config.vocab_size})")
    K, cfg, dt = model.kernels, model.config, model.dtype
    T, C, NH, V = ids.size, cfg.n_embd, cfg.n_head, cfg.vocab_size
    scale = 1.0 / math.sqrt(C // NH)
    with model.lock:  # the weights must not change between the forward and the backward
        tr = trace(model, ids)
        P = model.params
        A = lambda name: np.ascontiguousarray(tr[name], dtype=dt)  # noqa: E731
        z = lambda *shape: np.zeros(shape, dtype=dt)  # noqa: E731
        flat = np.zeros(model.layout.size, dtype=dt)
        g = model.layout.views(flat)  # weight gradients; LayerNorm and the encoder add into theirs
        out: dict[str, np.ndarray] = {}

        losses, probs = z(T), z(T, V)
        K.crossentropy_forward(losses, probs, A("logits"), targets)
        dlogits = out["d.logits"] = z(T, V)
        K.crossentropy_backward(dlogits, probs, targets, 1.0 / T)
        dhead, dlnf = out["d.lm_head"], out["d.ln_f"] = z(V, C), z(T, C)
        K.lm_head_backward(dlnf, dhead, dlogits, A("ln_f"), P["transformer.wte.weight"])
        dres = z(T, C)
        last = f"h.{cfg.n_layer - 1}.res_2"
        K.layernorm_backward(
            dres, g["transformer.ln_f.weight"], g["transformer.ln_f.bias"], dlnf, A(last),
            P["transformer.ln_f.weight"], A("ln_f.mean"), A("ln_f.rstd"),
        )  # fmt: skip
        for l in reversed(range(cfg.n_layer)):
            h, w = f"h.{l}.", f"transformer.h.{l}."
            out["d." + h + "res_2"] = out["d." + h + "mlp_out"] = dres
            dact = out["d." + h + "mlp_act"] = z(T, 4 * C)
            K.matmul_backward(
                dact, g[w + "mlp.c_proj.weight"], g[w + "mlp.c_proj.bias"], dres, A(h + "mlp_act"),
                P[w + "mlp.c_proj.weight"],
            )  # fmt: skip
            dpre = out["d." + h + "mlp_pre"] = z(T, 4 * C)
            K.gelu_backward(dpre, A(h + "mlp_pre"), dact)
            dln2 = out["d." + h + "ln_2"] = z(T, C)
            K.matmul_backward(dln2, g[w + "mlp.c_fc.weight"], g[w + "mlp.c_fc.bias"], dpre, A(h + "ln_2"),
                              P[w + "mlp.c_fc.weight"])  # fmt: skip
            dres = dres.copy()  # the residual: ln_2's backward adds into the stream's gradient
            K.layernorm_backward(
                dres, g[w + "ln_2.weight"], g[w + "ln_2.bias"], dln2, A(h + "res_1"), P[w + "ln_2.weight"],
                A(h + "ln_2.mean"), A(h + "ln_2.rstd"),
            )  # fmt: skip
            out["d." + h + "res_1"] = dres
            if not cfg.attention:  # res_1 is the block's input: the stream's gradient goes on unchanged
                continue
            out["d." + h + "attn_proj"] = dres
            dcat = out["d." + h + "attn_concat"] = z(T, C)
            K.matmul_backward(
                dcat, g[w + "attn.c_proj.weight"], g[w + "attn.c_proj.bias"], dres, A(h + "attn_concat"),
                P[w + "attn.c_proj.weight"],
            )  # fmt: skip
            dhead_out = dcat.reshape(T, NH, C // NH).transpose(1, 0, 2)  # (NH, T, HS), a view
            out["d." + h + "head_out"] = dhead_out
            qkv = np.concatenate([_merge_heads(A(h + n)) for n in "qkv"], axis=1)  # (T, 3C) as the forward had it
            att = A(h + "att")[None]  # (1, NH, T, T)
            # dL/datt is the kernel's first product (dout_h v_h^T), which it then overwrites in place
            out["d." + h + "att"] = np.tril(dhead_out @ A(h + "v").transpose(0, 2, 1))
            dqkv, dscore = z(1, T, 3 * C), z(1, NH, T, T)
            K.attention_backward(dqkv, dscore, dcat.reshape(1, T, C), qkv.reshape(1, T, 3 * C), att, NH)
            out["d." + h + "scores"] = dscore[0] / dt.type(scale)  # the kernel's includes the 1/sqrt(HS)
            for i, n in enumerate("qkv"):
                out["d." + h + n] = dqkv[0, :, i * C : (i + 1) * C].reshape(T, NH, C // NH).transpose(1, 0, 2).copy()
            dln1 = out["d." + h + "ln_1"] = z(T, C)
            K.matmul_backward(
                dln1, g[w + "attn.c_attn.weight"], g[w + "attn.c_attn.bias"], dqkv[0], A(h + "ln_1"),
                P[w + "attn.c_attn.weight"],
            )  # fmt: skip
            dres = dres.copy()
            x = A("x0") if l == 0 else A(f"h.{l - 1}.res_2")
            K.layernorm_backward(
                dres, g[w + "ln_1.weight"], g[w + "ln_1.bias"], dln1, x, P[w + "ln_1.weight"],
                A(h + "ln_1.mean"), A(h + "ln_1.rstd"),
            )  # fmt: skip
        out["d.x0"] = out["d.wpe"] = dres
        dwte = g["transformer.wte.weight"]
        dwte[...] = dhead  # the head's share; the encoder adds the embedding's
        dwpe = g.get("transformer.wpe.weight", np.zeros((0, C), dtype=dt))
        K.encoder_backward(dwte, dwpe, dres.reshape(1, T, C), ids.reshape(1, T))
        out["d.wte"] = dwte[ids]
    loss = float(losses.sum(dtype=np.float64)) / T
    return BackTrace(forward=tr, targets=targets, loss=loss, losses=losses, arrays=out, grads=g)


# ----- finite differences ----------------------------------------------------------------------


@dataclass
class FiniteDifference:
    """A gradient cell checked against the loss: (L(x + step) - L(x - step)) / (2 step) in float64."""

    name: str  # the gradient's name in the BackTrace
    index: tuple[int, ...]
    step: float
    loss_plus: float
    loss_minus: float
    estimate: float  # the central difference
    backprop: float  # the BackTrace's value of that cell

    @property
    def difference(self) -> float:
        return self.backprop - self.estimate


def perturbed_quantity(bt: BackTrace, name: str, index: tuple[int, ...]) -> tuple[str, str, tuple]:
    """What a finite difference of gradient `name` at `index` moves: ("weight", checkpoint name,
    index) or ("activation", reference.forward's name, index)."""
    index = tuple(int(i) for i in index)
    if name.startswith("transformer."):
        return "weight", name, index
    if name == "d.wte":  # the row of the token table this position reads, whole (head included)
        t, c = index
        return "weight", "transformer.wte.weight", (int(bt.ids[t]), c)
    if name == "d.lm_head":
        return "activation", "lm_head", index
    if not name.startswith("d."):
        raise KeyError(f"{name!r} is not a gradient of the backward trace")
    return "activation", name[2:], index


def finite_difference(model, bt: BackTrace, name: str, index, step: float = FD_STEP) -> FiniteDifference:
    """Check one cell of the backward trace: move the quantity it is the gradient of by +-step in the
    float64 reference forward pass (reference.py) and difference the window's loss."""
    index = tuple(int(i) for i in index)
    backprop = float(bt[name][index])
    kind, what, moved = perturbed_quantity(bt, name, index)
    with model.lock:
        params = {n: np.array(w, dtype=np.float64) for n, w in model.params.items()}
        wpe = np.array(model.wpe, dtype=np.float64)
    if "transformer.wpe.weight" in params:
        wpe = params["transformer.wpe.weight"]
    cfg = model.config

    def loss(delta: float) -> float:
        nudge = None
        if kind == "weight":
            saved = params[what][moved]
            params[what][moved] = saved + delta
        else:
            nudge = (what, moved, delta)
        try:
            return reference.loss(
                params, bt.ids, bt.targets, cfg.n_head, wpe, cfg.layer_norm_epsilon, nudge, cfg.attention
            )
        finally:
            if kind == "weight":
                params[what][moved] = saved

    plus, minus = loss(step), loss(-step)
    return FiniteDifference(name, index, step, plus, minus, (plus - minus) / (2 * step), backprop)
