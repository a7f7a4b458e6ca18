"""Activation and activation-gradient buffers for one (B, T), allocated once and reused every step."""

from __future__ import annotations

import numpy as np

from .config import ModelConfig


class Activations:
    """Everything the forward pass computes and the backward pass reads, per (B, T)."""

    def __init__(self, cfg: ModelConfig, B: int, T: int, dtype, *, keep_scores: bool = False, dropout: bool = False):
        L, C, NH, V = cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.vocab_size
        z = lambda *shape: np.zeros(shape, dtype=dtype)  # noqa: E731
        self.B, self.T = B, T
        self.encoded = z(B, T, C)  # token + position embedding
        self.x0 = z(B, T, C) if dropout else self.encoded  # after embedding dropout
        self.ln1 = z(L, B, T, C)
        self.ln1_mean, self.ln1_rstd = z(L, B * T), z(L, B * T)
        self.qkv = z(L, B, T, 3 * C)
        self.atty = z(L, B, T, C)  # attention output, heads side by side
        self.att = z(L, B, NH, T, T)  # softmax weights (0 above the diagonal)
        # Raw scores are only kept when a trace asks for them: backward needs the softmax alone.
        self.preatt = z(L, B, NH, T, T) if keep_scores else z(L, 0)
        self.attproj = z(L, B, T, C)
        self.res1 = z(L, B, T, C)
        self.ln2 = z(L, B, T, C)
        self.ln2_mean, self.ln2_rstd = z(L, B * T), z(L, B * T)
        self.fch = z(L, B, T, 4 * C)  # MLP pre-activation
        self.fch_gelu = z(L, B, T, 4 * C)
        self.fcproj = z(L, B, T, C)
        self.res2 = z(L, B, T, C)
        self.lnf = z(B, T, C)
        self.lnf_mean, self.lnf_rstd = z(B * T), z(B * T)
        self.logits = z(B, T, V)
        self.probs = z(B, T, V)
        self.losses = z(B * T)
        self.targets = np.zeros((B, T), dtype=np.int64)
        self.has_targets = False
        if dropout:
            # Masks (scaled by 1/(1-p)) and the uniform draws that make them, for embedding and both residual branches.
            self.mask0, self.rand0 = z(B, T, C), z(B, T, C)
            self.mask_attn, self.rand_attn = z(L, B, T, C), z(L, B, T, C)
            self.mask_mlp, self.rand_mlp = z(L, B, T, C), z(L, B, T, C)
            self.attproj_drop, self.fcproj_drop = z(L, B, T, C), z(L, B, T, C)
        self._grad_buffers = None

    def grad_buffers(self) -> "ActivationGrads":
        """Gradient scratch for the backward pass, made on first use (inference never needs it)."""
        if self._grad_buffers is None:
            self._grad_buffers = ActivationGrads(self)
        return self._grad_buffers


class ActivationGrads:
    """Scratch for gradients of activations; one of each, reused layer after layer (as in llm.c)."""

    def __init__(self, acts: Activations):
        B, T = acts.B, acts.T
        C = acts.lnf.shape[-1]
        NH = acts.att.shape[2]
        V = acts.logits.shape[-1]
        z = lambda *shape: np.zeros(shape, dtype=acts.lnf.dtype)  # noqa: E731
        self.dres = z(B, T, C)  # running gradient of the residual stream
        self.dbranch = z(B, T, C)  # gradient of a branch output (after its dropout)
        self.dln = z(B, T, C)
        self.datty = z(B, T, C)
        self.dqkv = z(B, T, 3 * C)
        self.datt = z(B, NH, T, T)
        self.dfch = z(B, T, 4 * C)
        self.dfch_gelu = z(B, T, 4 * C)
        self.dlogits = z(B, T, V)
