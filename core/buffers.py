"""Activation and activation-gradient buffers for one (B, T), allocated once and reused every step.

Row-wise tensors are stored as (L, B*T, width): the kernels see 2-D rows, and per-layer views are
made once here rather than on every call (at small sizes Python overhead is most of a step).

Memory, as llm.c does it: only a trace (keep_scores) keeps every intermediate. Otherwise the
LayerNorm outputs, the attention output and weights and the GELU output live in buffers shared by
all layers, and the backward pass recomputes them from what is kept (the LayerNorm input, mean and
rstd; q, k, v; the GELU input): ~5% of a step. Without dropout the two projections write straight
into the residual stream, so neither branch output is stored. Per token and layer 18C + NH*T floats
become 9C (qkv, res1, fch, res2).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from .config import ModelConfig


class Activations:
    """Everything the forward pass computes and the backward pass reads, per (B, T)."""

    def __init__(
        self, cfg: ModelConfig, B: int, T: int, dtype, kernels, *, keep_scores: bool = False, dropout: bool = False
    ):
        """kernels: the kernel namespace the buffers are made for (its zeros allocates them)."""
        L, C, NH, V = cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.vocab_size
        N = B * T  # rows
        self.kernels = kernels
        z = lambda *shape: kernels.zeros(shape, dtype)  # noqa: E731
        self.B, self.T, self.dropout = B, T, dropout
        self.recompute = not keep_scores  # backward recomputes ln1, ln2, atty, att, fch_gelu (shared buffers)
        self.fused_residual = not keep_scores and not dropout  # res = x + proj(...): no branch buffers
        self.ids = kernels.zeros((B, T), np.int64)
        self.targets = kernels.zeros((B, T), np.int64)
        self.targets_flat = self.targets.reshape(N)
        self._host_draws: dict[tuple, np.ndarray] = {}  # host scratch for dropout draws on a device
        self.has_targets = False
        self.encoded = z(B, T, C)  # token + position embedding
        self.x0 = z(B, T, C) if dropout else self.encoded  # after embedding dropout
        kept = 1 if self.recompute else L  # layers stored of what backward can recompute
        self.ln1, self.ln1_mean, self.ln1_rstd = z(kept, N, C), z(L, N), z(L, N)
        # Without attention (an MLP-only model) its buffers are empty and res1 is the block's input itself.
        La = L if cfg.attention else 0
        self.qkv = z(La, N, 3 * C)  # [q | k | v]
        self.atty = z(min(kept, La), N, C)  # attention output, heads side by side
        self.att = z(min(kept, La), B, NH, T, T)  # softmax weights (0 above the diagonal)
        # Raw scores are only kept when a trace asks for them: backward needs the softmax alone.
        self.preatt = z(La, B, NH, T, T) if keep_scores else z(La, 0, 0, 0, 0)
        self.attproj = z(0, N, C) if self.fused_residual else z(La, N, C)
        self.res1 = z(La, N, C)
        # ln_2 shares ln_1's buffer when recomputed: ln_1 is consumed (by c_attn) before ln_2 is made
        self.ln2 = self.ln1 if self.recompute else z(L, N, C)
        self.ln2_mean, self.ln2_rstd = z(L, N), z(L, N)
        self.fch = z(L, N, 4 * C)  # MLP pre-activation
        self.fch_gelu = z(kept, N, 4 * C)
        self.fcproj = z(0, N, C) if self.fused_residual else z(L, N, C)
        self.res2 = z(L, N, C)
        self.lnf, self.lnf_mean, self.lnf_rstd = z(N, C), z(N), z(N)
        self.logits = z(N, V)
        self.probs = z(N, V)
        self.losses = z(N)
        if dropout:
            # Masks (scaled by 1/(1-p)) and the uniform draws that make them: embedding, both branches.
            self.mask0, self.rand0 = z(B, T, C), z(B, T, C)
            self.mask_attn, self.rand_attn = z(La, N, C), z(La, N, C)
            self.mask_mlp, self.rand_mlp = z(L, N, C), z(L, N, C)
            self.attproj_drop, self.fcproj_drop = z(La, N, C), z(L, N, C)
        x0 = self.x0.reshape(N, C)
        self.layers = []
        for l in range(L):
            r = 0 if self.recompute else l  # the slot of a recomputed intermediate
            x = x0 if l == 0 else self.res2[l - 1]  # the block's input (N, C)
            v = SimpleNamespace(
                x=x,
                ln1=self.ln1[r],
                ln1_mean=self.ln1_mean[l],
                ln1_rstd=self.ln1_rstd[l],
                res1=self.res1[l] if La else x,  # no attention: the MLP reads the block's input
                ln2=self.ln2[r],
                ln2_mean=self.ln2_mean[l],
                ln2_rstd=self.ln2_rstd[l],
                fch=self.fch[l],
                fch_gelu=self.fch_gelu[r],
                res2=self.res2[l],
                attproj=None if self.fused_residual or not La else self.attproj[l],
                fcproj=None if self.fused_residual else self.fcproj[l],
            )
            if La:
                v.qkv, v.qkv3 = self.qkv[l], self.qkv[l].reshape(B, T, 3 * C)
                v.atty, v.atty3 = self.atty[r], self.atty[r].reshape(B, T, C)
                v.att, v.preatt = self.att[r], self.preatt[l]
            if dropout:
                v.mask_mlp = self.mask_mlp[l]
                # (output, mask, draws) of each branch's dropout, in _dropout's order
                v.mlp_dropout = (self.fcproj_drop[l], v.mask_mlp, self.rand_mlp[l])
                if La:
                    v.mask_attn = self.mask_attn[l]
                    v.attn_dropout = (self.attproj_drop[l], v.mask_attn, self.rand_attn[l])
            self.layers.append(v)
        self._grad_buffers = None

    def draw_uniform(self, rand, rng: np.random.Generator) -> None:
        """WRITES rand = uniform [0, 1) draws of rng. They are drawn on the host on every backend (into
        a host buffer kept per shape, then copied to a device), so a run's dropout masks are the same
        numbers whatever the device, and a resumed run repeats them."""
        if self.kernels.DEVICE == "cpu":
            rng.random(out=rand, dtype=rand.dtype)
            return
        host = self._host_draws.get(tuple(rand.shape))
        if host is None:
            host = self._host_draws[tuple(rand.shape)] = np.zeros(tuple(rand.shape), rand.dtype)
        rng.random(out=host, dtype=host.dtype)
        self.kernels.copy_in(rand, host)

    def grad_buffers(self) -> ActivationGrads:
        """Gradient scratch for the backward pass, made on first use (inference never needs it)."""
        if self._grad_buffers is None:
            self._grad_buffers = ActivationGrads(self)
        return self._grad_buffers


class ActivationGrads:
    """Scratch for gradients of activations; one of each, reused layer after layer (as in llm.c).

    In each layer the MLP's gradients are finished before the attention's start, so one (N, 4C)
    buffer holds dL/d(GELU output), then in place dL/dfch, then [dL/datty | dL/dqkv]."""

    def __init__(self, acts: Activations):
        B, T = acts.B, acts.T
        N, C = acts.lnf.shape
        NH = acts.att.shape[2]
        V = acts.logits.shape[1]
        z = lambda *shape: acts.kernels.zeros(shape, acts.lnf.dtype)  # noqa: E731
        self.dres = z(N, C)  # running gradient of the residual stream
        self.dbranch = z(N, C) if acts.dropout else None  # gradient of a branch output before its dropout
        self.dln = z(N, C)
        self.dfch = z(N, 4 * C)  # dL/d(GELU output), then dL/dfch (gelu_backward_inplace)
        flat = self.dfch.reshape(N * 4 * C)
        self.datty = flat[: N * C].reshape(N, C)  # the attention branch reuses the MLP's buffer
        self.datty3 = self.datty.reshape(B, T, C)
        self.dqkv = flat[N * C :].reshape(N, 3 * C)
        self.dqkv3 = self.dqkv.reshape(B, T, 3 * C)
        if acts.att.shape[0] == 0:  # no attention: nothing flows through softmax weights
            self.datt = z(0, 0, 0, 0)
        elif acts.recompute and B * NH * T * T <= acts.fch_gelu.size:
            # only the MLP's backward uses the shared GELU output: the attention's reuses its memory
            self.datt = acts.fch_gelu.reshape(acts.fch_gelu.size)[: B * NH * T * T].reshape(B, NH, T, T)
        else:
            self.datt = z(B, NH, T, T)
        self.dlogits = z(N, V)
        self.dx0 = self.dres.reshape(B, T, C)
        self.dx0_drop = self.dbranch.reshape(B, T, C) if acts.dropout else None
