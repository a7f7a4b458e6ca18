"""The backward pass as an ordered list of stages, from the loss to the embeddings: each names its gradient
in the BackTrace, its chain-rule formula, and (for a weight's gradient) the weight an AdamW step would move."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# key: (title, formula, one line on what it means, per head?)
BACK_INFO: dict[str, tuple[str, str, str, bool]] = {
    "loss": ("Loss", "L = mean_t −log p_t[y_t]", "Each position's loss: how surprised the model is by the next token.",
             False),
    "logits": ("∂L/∂logits", "d.logits = (softmax(logits) − onehot(y)) / T",
               "Push up the target's logit, push down the others in proportion to their probability.", False),
    "lm_head": ("∂L/∂W head", "dW_head = d.logitsᵀ · ln_f   (V,C); wte is tied: its gradient adds the embedding's",
                "The LM head's share of the token table's gradient: one row per vocabulary entry.", False),
    "ln_f": ("∂L/∂ln_f", "d.ln_f = d.logits · wte", "The gradient reaching the final LayerNorm's output.", False),
    "res_2": ("∂L/∂res₂", "d.res₂ = what flows back from above (ln_f, or the next block's ln₁ and residual)",
              "The residual stream's gradient leaving this block.", False),
    "mlp_out": ("∂L/∂mlp out", "d.mlp_out = d.res₂   (res₂ = res₁ + mlp_out: a sum copies its gradient)",
                "The MLP's output receives the stream's gradient unchanged.", False),
    "w_mlp_proj": ("∂L/∂W mlp proj", "dW_proj = mlp_actᵀ · d.mlp_out   (4C,C)",
                   "How the loss changes with each weight of the MLP's down-projection.", False),
    "mlp_act": ("∂L/∂GELU out", "d.act = d.mlp_out · W_projᵀ", "Back through the down-projection.", False),
    "mlp_pre": ("∂L/∂GELU in", "d.pre = d.act ⊙ gelu′(pre)", "Back through GELU: scaled by its slope at each input.",
                False),
    "w_mlp_fc": ("∂L/∂W mlp fc", "dW_fc = ln₂ᵀ · d.pre   (C,4C)",
                 "How the loss changes with each up-projection weight.", False),
    "ln_2": ("∂L/∂ln₂", "d.ln₂ = d.pre · W_fcᵀ", "Back through the up-projection.", False),
    "res_1": ("∂L/∂res₁", "d.res₁ = d.res₂ + LN₂ᵀ(d.ln₂),  LNᵀ: rstd·(dx̂ − mean dx̂ − x̂·mean(dx̂·x̂)), dx̂ = dy·γ",
              "The stream's gradient plus what came back through LayerNorm 2.", False),
    "w_attn_proj": ("∂L/∂W attn proj", "dW_o = attn_concatᵀ · d.res₁   (C,C)",
                    "How the loss changes with each weight of the attention's output projection.", False),
    "attn_concat": ("∂L/∂heads joined", "d.concat = d.res₁ · W_oᵀ", "Back through the output projection.", False),
    "att": ("∂L/∂attn weights", "d.att = d.out_h · V_hᵀ   (0 above the diagonal)",
            "How the loss changes with each attention weight of this head.", True),
    "scores": ("∂L/∂scores", "d.scores = att ⊙ (d.att − Σ_s att·d.att)   (through the softmax)",
               "Back through the row softmax: a weight's gradient minus the row's weighted mean.", True),
    "q": ("∂L/∂Q", "d.Q = d.scores · K / √HS", "What each query should have looked for.", True),
    "k": ("∂L/∂K", "d.K = d.scoresᵀ · Q / √HS", "What each key should have offered.", True),
    "v": ("∂L/∂V", "d.V = attᵀ · d.out_h", "What each value should have handed over.", True),
    "w_attn": ("∂L/∂W qkv", "dW_qkv = ln₁ᵀ · [dQ | dK | dV]   (C,3C)",
               "How the loss changes with each query, key and value weight.", False),
    "ln_1": ("∂L/∂ln₁", "d.ln₁ = [dQ | dK | dV] · W_qkvᵀ", "Back through the query, key and value products.", False),
    "x0": ("∂L/∂x0", "d.x0 = d.res₁ + LN₁ᵀ(d.ln₁)   (layer 0)", "The gradient reaching the embeddings' sum.", False),
    "wte": ("∂L/∂wte rows", "dwte[id] = Σ_{t: ids_t = id} d.x0[t] + dW_head[id]",
            "The whole gradient of each position's row of the token table (embedding and head).", False),
    "wpe": ("∂L/∂wpe rows", "dwpe[t] = d.x0[t]", "Each position's row of the position table.", False),
}  # fmt: skip

LAYER_KEYS = (
    "res_2", "mlp_out", "w_mlp_proj", "mlp_act", "mlp_pre", "w_mlp_fc", "ln_2", "res_1", "w_attn_proj",
    "attn_concat", "att", "scores", "q", "k", "v", "w_attn", "ln_1",
)  # fmt: skip
MLP_ONLY_KEYS = LAYER_KEYS[: LAYER_KEYS.index("res_1") + 1]  # a block without attention: its MLP alone
FIRST_KEYS = ("loss", "logits", "lm_head", "ln_f")
LAST_KEYS = ("x0", "wte", "wpe")
WEIGHTS = {  # weight-gradient stage -> checkpoint suffix of the weight
    "w_mlp_proj": "mlp.c_proj.weight",
    "w_mlp_fc": "mlp.c_fc.weight",
    "w_attn_proj": "attn.c_proj.weight",
    "w_attn": "attn.c_attn.weight",
}


@dataclass(frozen=True)
class BackStage:
    """One step of the backward pass; `layer` is set inside a transformer block."""

    key: str
    layer: int | None = None

    @property
    def title(self) -> str:
        return BACK_INFO[self.key][0]

    @property
    def formula(self) -> str:
        return BACK_INFO[self.key][1]

    @property
    def description(self) -> str:
        return BACK_INFO[self.key][2]

    @property
    def per_head(self) -> bool:
        return BACK_INFO[self.key][3]

    @property
    def name(self) -> str:
        """The BackTrace entry holding this stage's gradient."""
        if self.key in WEIGHTS:
            return f"transformer.h.{self.layer}.{WEIGHTS[self.key]}"
        if self.key == "loss":
            return "losses"
        return f"d.h.{self.layer}.{self.key}" if self.layer is not None else f"d.{self.key}"


def all_back_stages(n_layer: int, attention: bool = True) -> list[BackStage]:
    """Every stage in the order the backward pass computes them: the loss first, the embeddings last
    (attention False: MLP-only blocks, whose residual gradient flows straight on)."""
    stages = [BackStage(k) for k in FIRST_KEYS]
    for layer in reversed(range(n_layer)):
        stages += [BackStage(k, layer) for k in (LAYER_KEYS if attention else MLP_ONLY_KEYS)]
    return stages + [BackStage(k) for k in LAST_KEYS]


def stage_matrix(bt, stage: BackStage, head: int) -> np.ndarray:
    """The 2-D matrix a stage shows (one head's slice of a per-head gradient)."""
    if stage.key == "loss":
        return bt.losses[:, None]
    full = bt[stage.name]
    return full[head] if stage.per_head else full


def weight_cell(bt, stage: BackStage, row: int, col: int, learned_positions: bool) -> tuple[str, tuple] | None:
    """(weight name, index) the selected cell is the gradient of, or None for an activation's gradient."""
    if stage.key in WEIGHTS:
        return stage.name, (row, col)
    if stage.key in ("lm_head",):
        return "transformer.wte.weight", (row, col)
    if stage.key == "wte":
        return "transformer.wte.weight", (int(bt.ids[row]), col)
    if stage.key == "wpe" and learned_positions:
        return "transformer.wpe.weight", (row, col)
    return None


def fd_cell(stage: BackStage, row: int, col: int, head: int) -> tuple[str, tuple] | None:
    """(BackTrace name, index) of the cell a finite difference checks; None for the loss itself."""
    if stage.key == "loss":
        return None
    return stage.name, ((head, row, col) if stage.per_head else (row, col))


def training_window(trainer, start: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, targets) of the training text from token `start` (wrapped into range): one row of a
    training batch, as long as the trainer's windows, each target the next token of the text."""
    T = trainer.x.shape[1]
    data = trainer.train_ids
    start = start % (len(data) - T)
    ids = np.asarray(data[start : start + T], dtype=np.int64)
    return ids, np.asarray(data[start + 1 : start + T + 1], dtype=np.int64)
