"""Interventions: the model's own forward pass with a head, a layer's attention or a layer's MLP
knocked out, or a prompt token replaced, to see what a part of the model does for one prediction.

The ablated pass runs the model's kernels into its trace buffers (so a trace of it shows the numbers
that produced the changed prediction); the training path never sees any of this.

Ablation modes: "zero" replaces the part's output by 0; "mean" replaces it at every position by its
mean over the prompt's positions (the part still adds its average, but no longer depends on the
token). A head's output is its weighted sum of values (before c_proj, so c_proj's bias stays);
a layer's attention or MLP output is the branch added to the residual stream (after c_proj).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError
from .parallel import inference_pass
from .sampling import draw

MODES = ("zero", "mean")
PARTS = ("head", "attn", "mlp")
PART_WORDS = {"attn": "attention", "mlp": "MLP"}  # a layer's parts in words


@dataclass(frozen=True)
class Ablation:
    """One part knocked out: a head (part "head", head index), a layer's attention or its MLP."""

    layer: int
    part: str = "head"
    head: int | None = None
    mode: str = "zero"

    @classmethod
    def parse(cls, text: str, mode: str = "zero") -> Ablation:
        """'1.3' (layer 1, head 3), '1.attn' (layer 1's attention), '1.mlp' (its MLP)."""
        layer, dot, what = text.strip().partition(".")
        if not dot or not layer.isdigit() or not (what.isdigit() or what in ("attn", "mlp")):
            raise ConfigError(f"cannot read ablation {text!r}: write LAYER.HEAD (1.3), LAYER.attn or LAYER.mlp")
        if what.isdigit():
            return cls(int(layer), "head", int(what), mode)
        return cls(int(layer), what, None, mode)

    @property
    def label(self) -> str:
        """'1.3', '1.attn' or '1.mlp' (the form parse reads)."""
        return f"{self.layer}.{self.head if self.part == 'head' else self.part}"

    def describe(self) -> str:
        """'layer 1 · head 3 (zeroed)': layer first and counted from 0, as the screens' titles and h.1's name."""
        what = f"head {self.head}" if self.part == "head" else PART_WORDS[self.part]
        return f"layer {self.layer} · {what} ({'zeroed' if self.mode == 'zero' else 'set to its mean over positions'})"

    def check(self, n_layer: int, n_head: int) -> Ablation:
        """Self, or a one-line ConfigError naming what is out of range."""
        if self.mode not in MODES:
            raise ConfigError(f"ablation mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.part not in PARTS:
            raise ConfigError(f"ablation part {self.part!r} is not one of {', '.join(PARTS)}")
        if not 0 <= self.layer < n_layer:
            raise ConfigError(f"layer {self.layer} does not exist: the model has layers 0 to {n_layer - 1}")
        if self.part == "head" and (self.head is None or not 0 <= self.head < n_head):
            raise ConfigError(f"head {self.head} does not exist: each layer has heads 0 to {n_head - 1}")
        return self


@dataclass(frozen=True)
class Intervention:
    """What to change in a forward pass: parts knocked out, and prompt tokens replaced
    (position -> token id; a negative position counts from the end)."""

    ablations: tuple[Ablation, ...] = ()
    tokens: Mapping[int, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.ablations) or bool(self.tokens)

    def describe(self) -> str:
        parts = [a.describe() for a in self.ablations]
        parts += [f"token {p} forced to id {i}" for p, i in self.tokens.items()]
        return "; ".join(parts) or "nothing changed"

    def edited_ids(self, ids: np.ndarray, vocab_size: int) -> np.ndarray:
        """ids (T,) with the forced tokens put in."""
        out = np.array(ids, dtype=np.int64)
        for pos, tok in self.tokens.items():
            if not -len(out) <= pos < len(out):
                raise ConfigError(f"position {pos} is outside the prompt's {len(out)} tokens")
            if not 0 <= tok < vocab_size:
                raise ConfigError(f"token id {tok} is outside the vocabulary [0, {vocab_size})")
            out[pos] = tok
        return out

    def check(self, config) -> Intervention:
        for a in self.ablations:
            a.check(config.n_layer, config.n_head)
            if a.part != "mlp" and not config.attention:
                raise ConfigError(f"cannot knock out {a.label}: this model has no attention (MLP only)")
        return self

    def for_layer(self, layer: int) -> list[Ablation]:
        return [a for a in self.ablations if a.layer == layer]


def as_intervention(x) -> Intervention | None:
    """An Intervention from an Intervention, one Ablation, several, or None."""
    if x is None or isinstance(x, Intervention):
        return x
    if isinstance(x, Ablation):
        return Intervention((x,))
    if isinstance(x, Iterable):
        return Intervention(tuple(x))
    raise TypeError(f"not an intervention: {x!r}")


def _knock_out(out: np.ndarray, mode: str) -> None:
    """out (T, width) in place: 0, or every row its mean over rows."""
    if mode == "zero":
        out[...] = 0.0
    else:
        out[...] = out.mean(axis=0, dtype=np.float64)


def ablated_forward(model, ids: np.ndarray, intervention: Intervention, *, from_layer: int = 0, last_only=False):
    """The model's forward pass over one prompt ids (T,) with the intervention's ablations, into the
    trace buffers (keep_scores: every intermediate per layer); leaves them as last_activations.
    from_layer > 0 reruns only the blocks from there: the caller guarantees the buffers hold this
    prompt's unablated earlier blocks (a clean pass just before). The tokens are not edited here."""
    if model.device != "cpu":
        raise ConfigError("knock-outs and replaced tokens run on the CPU only; use the model on the CPU")
    ids = model._check_ids(ids)
    K, cfg = model.kernels, model.config
    T = ids.shape[1]
    a = model.activations(1, T, keep_scores=True)
    eps = cfg.layer_norm_epsilon
    HS = cfg.head_size
    if from_layer == 0:
        a.ids[...] = ids
        K.encoder_forward(a.encoded, a.ids, model._wte, model.wpe)
    for l in range(from_layer, cfg.n_layer):
        v = a.layers[l]
        ln1w, ln1b, attn_w, attn_b, aproj_w, aproj_b, ln2w, ln2b, fc_w, fc_b, mproj_w, mproj_b = model._layer_params[l]
        here = intervention.for_layer(l)
        if cfg.attention:  # else res1 is the block's input (see buffers.py)
            K.layernorm_forward(v.ln1, v.ln1_mean, v.ln1_rstd, v.x, ln1w, ln1b, eps)
            K.matmul_forward(v.qkv, v.ln1, attn_w, attn_b)
            K.attention_forward(v.atty3, v.att, v.preatt, v.qkv3, cfg.n_head)
            for ab in here:
                if ab.part == "head":
                    _knock_out(v.atty[:, ab.head * HS : (ab.head + 1) * HS], ab.mode)  # (T, HS)
            K.matmul_forward(v.attproj, v.atty, aproj_w, aproj_b)
            for ab in here:
                if ab.part == "attn":
                    _knock_out(v.attproj, ab.mode)  # (T, C)
            K.residual_forward(v.res1, v.x, v.attproj)
        K.layernorm_forward(v.ln2, v.ln2_mean, v.ln2_rstd, v.res1, ln2w, ln2b, eps)
        K.matmul_forward(v.fch, v.ln2, fc_w, fc_b)
        K.gelu_forward(v.fch_gelu, v.fch)
        K.matmul_forward(v.fcproj, v.fch_gelu, mproj_w, mproj_b)
        for ab in here:
            if ab.part == "mlp":
                _knock_out(v.fcproj, ab.mode)  # (T, C)
        K.residual_forward(v.res2, v.res1, v.fcproj)
    model.last_activations = a
    a.dropout_active, a.has_targets = False, False
    if last_only:
        last = np.ascontiguousarray(a.layers[-1].res2[-1:])  # (1, C)
        K.layernorm_forward(a.lnf[:1], a.lnf_mean[:1], a.lnf_rstd[:1], last, model._lnf_w, model._lnf_b, eps)
        K.lm_head_forward(a.logits[:1], a.lnf[:1], model._wte)
        return a.logits[0]
    K.layernorm_forward(a.lnf, a.lnf_mean, a.lnf_rstd, a.layers[-1].res2, model._lnf_w, model._lnf_b, eps)
    K.lm_head_forward(a.logits, a.lnf, model._wte)
    return a.logits[T - 1]


def _softmax64(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def intervened_probs(model, prompt, intervention=None) -> np.ndarray:
    """Probabilities (V,) of the next token after the prompt with the intervention applied."""
    iv = as_intervention(intervention) or Intervention()
    iv.check(model.config)
    ids = iv.edited_ids(model.encode_prompt(prompt), model.config.vocab_size)
    with model.lock, np.errstate(over="ignore", invalid="ignore"), inference_pass(model) as runner:
        logits = ablated_forward(runner, ids, iv, last_only=True).copy()
    return _softmax64(logits)


def greedy_continuation(model, prompt, n: int, intervention=None) -> list[int]:
    """The n most likely tokens after the prompt, one at a time, with the intervention applied at
    every step (no KV cache: a mean ablation averages over the positions so far)."""
    return continuation(model, prompt, n, intervention)


def continuation(model, prompt, n: int, intervention=None, sampling=None) -> list[int]:
    """n tokens after the prompt with the intervention applied at every step, each drawn as `sampling`
    (a sampling.Sampling: temperature, top-k, top-p, seed) says; None or greedy: the most likely one.
    The same seed gives the same draws, so a continuation with and without a change differ only where
    the change moved the probabilities."""
    iv = as_intervention(intervention) or Intervention()
    iv.check(model.config)
    ids = list(iv.edited_ids(model.encode_prompt(prompt), model.config.vocab_size))
    greedy = sampling is None or sampling.greedy
    rng = None if greedy else sampling.rng()
    out = []
    T = model.config.block_size
    for _ in range(n):
        with model.lock, np.errstate(over="ignore", invalid="ignore"), inference_pass(model) as runner:
            logits = ablated_forward(runner, np.array(ids[-T:], dtype=np.int64), iv, last_only=True).copy()
        tok = int(np.argmax(logits)) if greedy else draw(sampling.distribution(logits), rng)
        out.append(tok)
        ids.append(tok)
    return out


@contextmanager
def _pass(twin):
    """inference_pass on twin, whose buffers the runner writes into (inference_pass may hand out a
    replica, which would start with buffers of its own: the ranking reuses the earlier blocks')."""
    with inference_pass(twin) as runner:
        runner._acts = twin._acts
        yield runner


@dataclass(frozen=True)
class Effect:
    """What knocking out one part did to the chosen next token's probability."""

    ablation: Ablation
    p_before: float
    p_after: float
    top_after: int  # the most likely next token with the part knocked out
    token: int  # the token whose probability is measured

    @property
    def delta(self) -> float:
        return self.p_after - self.p_before


def rank_heads(
    model, prompt, token: int | None = None, mode: str = "zero", *, cancelled=None, progress=None
) -> list[Effect]:
    """Every head, each layer's attention and each layer's MLP (the MLPs alone in a model without
    attention) knocked out alone (mode), ranked by
    how much the probability of `token` (default: the unablated most likely next token) changes,
    largest change first. cancelled: a callable checked between passes (a worker's stop flag);
    progress(done, total): called after each pass."""
    cfg = model.config
    ids = model.encode_prompt(prompt)
    # Latest layer first: a pass from layer l rewrites only blocks l and later, so the blocks before
    # the next (earlier or equal) layer still hold the clean pass's numbers and need no rerun.
    parts = []
    for l in reversed(range(cfg.n_layer)):
        if cfg.attention:
            parts += [Ablation(l, "head", h, mode) for h in range(cfg.n_head)]
            parts += [Ablation(l, "attn", None, mode)]
        parts += [Ablation(l, "mlp", None, mode)]
    twin = model.replica()  # its own buffers: other passes on the model between ours cannot touch them
    effects = []
    with np.errstate(over="ignore", invalid="ignore"):
        with model.lock, _pass(twin) as runner:
            clean = _softmax64(ablated_forward(runner, ids, Intervention(), last_only=True))
        token = int(np.argmax(clean)) if token is None else int(token)
        if not 0 <= token < cfg.vocab_size:
            raise ConfigError(f"token id {token} is outside the vocabulary [0, {cfg.vocab_size})")
        before = float(clean[token])
        for ab in parts:
            if cancelled is not None and cancelled():
                break
            with model.lock, _pass(twin) as runner:
                logits = ablated_forward(runner, ids, Intervention((ab,)), from_layer=ab.layer, last_only=True)
                p = _softmax64(logits)
            effects.append(Effect(ab, before, float(p[token]), int(np.argmax(p)), token))
            if progress is not None:
                progress(len(effects), len(parts))
    effects.sort(key=lambda e: -abs(e.delta))
    return effects
