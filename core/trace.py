"""A trace: every intermediate of one forward pass, read from the buffers the model computed.

The trace keeps the forward pass's own buffers (the model makes new ones for its next pass), so
its arrays are views, not copies: at GPT-2 small's size and 64 tokens, copying them cost as much
as a third of the forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import LN_EPS
from .finite import check_finite_output
from .intervene import ablated_forward, as_intervention
from .memory import check_available, trace_bytes
from .parallel import inference_pass


@dataclass
class Trace:
    """Named intermediates of one forward pass over one prompt (B = 1)."""

    ids: np.ndarray  # (T,) token ids
    tokens: list[str]  # display text of each token (token_label: a split character shows its bytes)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    layer_norm_epsilon: float = LN_EPS  # the model's, for explaining a LayerNorm with its own numbers

    @property
    def names(self) -> list[str]:
        return list(self.arrays)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __contains__(self, name: str) -> bool:
        return name in self.arrays


def _heads(x: np.ndarray, n_head: int) -> np.ndarray:
    """(T, C) -> (NH, T, HS)."""
    T, C = x.shape
    return x.reshape(T, n_head, C // n_head).transpose(1, 0, 2).copy()


def _traced_forward(model, ids: np.ndarray, intervention=None):
    """The forward pass over one prompt, keeping every intermediate; returns its buffers (this
    trace's own from now on). inference_pass picks how the pass uses the threads."""
    with inference_pass(model) as runner:
        if intervention:
            ablated_forward(runner, ids, intervention)
        else:
            runner.forward(ids[None, :], keep_scores=True)
        return runner.take_activations()


def trace(model, text_or_ids, intervention=None) -> Trace:
    """Run the model on one prompt and collect every stage, named and shaped (see README).
    intervention (an intervene.Intervention or Ablation): the pass with those parts knocked out and
    those tokens replaced; the trace then shows the changed pass's numbers."""
    ids = model.encode_prompt(text_or_ids)
    iv = as_intervention(intervention)
    if iv:
        ids = iv.check(model.config).edited_ids(ids, model.config.vocab_size)
    cfg = model.config
    C, NH = cfg.n_embd, cfg.n_head
    need = trace_bytes(cfg, len(ids), model.dtype.itemsize)
    check_available(need, f"a trace of {len(ids):,} tokens of this model", "use a shorter prompt")
    K = model.kernels
    with model.lock, np.errstate(over="ignore", invalid="ignore"):  # overflow is checked just below
        a = _traced_forward(model, ids, iv)  # this trace's own buffers from now on
        wte_rows = model.weight_rows("transformer.wte.weight", ids)  # copies: the weights change
        wpe_rows = np.array(K.to_host(model.wpe[: len(ids)]), dtype=np.float32)

    def f32(x):
        """The buffer on the host (read from the device, if it is there) as float32."""
        x = K.to_host(x)
        return x if x.dtype == np.float32 else x.astype(np.float32)

    logits = f32(a.logits)
    check_finite_output(model, logits, "next-token scores")
    out: dict[str, np.ndarray] = {}
    out["wte"] = wte_rows
    out["wpe"] = wpe_rows
    out["x0"] = f32(a.encoded[0])
    for l in range(cfg.n_layer):
        h = f"h.{l}."
        if cfg.attention:  # an MLP-only model has no attention stages: res_1 is the block's input
            out[h + "ln_1"] = f32(a.ln1[l])
            out[h + "ln_1.mean"] = f32(a.ln1_mean[l])
            out[h + "ln_1.rstd"] = f32(a.ln1_rstd[l])
            qkv = f32(a.qkv[l])
            out[h + "q"] = _heads(qkv[:, :C], NH)
            out[h + "k"] = _heads(qkv[:, C : 2 * C], NH)
            out[h + "v"] = _heads(qkv[:, 2 * C :], NH)
            out[h + "scores"] = f32(a.preatt[l, 0])
            out[h + "att"] = f32(a.att[l, 0])
            out[h + "attn_concat"] = f32(a.atty[l])
            out[h + "head_out"] = _heads(out[h + "attn_concat"], NH)
            out[h + "attn_proj"] = f32(a.attproj[l])
        out[h + "res_1"] = f32(a.layers[l].res1)
        out[h + "ln_2"] = f32(a.ln2[l])
        out[h + "ln_2.mean"] = f32(a.ln2_mean[l])
        out[h + "ln_2.rstd"] = f32(a.ln2_rstd[l])
        out[h + "mlp_pre"] = f32(a.fch[l])
        out[h + "mlp_act"] = f32(a.fch_gelu[l])
        out[h + "mlp_out"] = f32(a.fcproj[l])
        out[h + "res_2"] = f32(a.res2[l])
    out["ln_f"] = f32(a.lnf)
    out["ln_f.mean"] = f32(a.lnf_mean)
    out["ln_f.rstd"] = f32(a.lnf_rstd)
    out["logits"] = logits
    model.kernels.softmax_forward(a.probs, a.logits)
    out["probs"] = f32(a.probs)
    tok = model.tokenizer
    tokens = [tok.token_label(int(i)) for i in ids] if tok is not None else [str(int(i)) for i in ids]
    return Trace(ids=ids.copy(), tokens=tokens, arrays=out, layer_norm_epsilon=cfg.layer_norm_epsilon)
