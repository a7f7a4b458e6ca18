"""The forward pass as an ordered list of stages, each naming its trace matrix, formula and labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# key: (title, formula, what it means in one line, per head?, colour kind)
STAGE_INFO: dict[str, tuple[str, str, str, bool, str]] = {
    "tokenize": (
        "Tokenize",
        "ids = encode(prompt)",
        "The prompt cut into tokens; each token is a row number in the vocabulary.",
        False,
        "sequential",
    ),
    "wte": (
        "Token embedding",
        "tok[t] = wte[ids[t]]",
        "Each token id picks its learned row of C numbers from the embedding table.",
        False,
        "signed",
    ),
    "wpe": (
        "Position embedding",
        "pos[t] = wpe[t]",
        "Each position t has its own row of C numbers, so order matters.",
        False,
        "signed",
    ),
    "x0": (
        "+ Position",
        "x = tok + pos",
        "Token and position vectors are added: this is the residual stream.",
        False,
        "signed",
    ),
    "ln_1": (
        "LayerNorm 1",
        "ln₁ = (x − mean)·rstd·γ + β,  rstd = 1/√(var + {eps})",
        "Each row is rescaled to mean 0 and variance 1, then by learned γ, β.",
        False,
        "signed",
    ),
    "q": ("Query Q", "Q = ln₁·W_q + b_q  (this head's HS columns)", "What each token is looking for.", True, "signed"),
    "k": (
        "Key K",
        "K = ln₁·W_k + b_k  (this head's HS columns)",
        "What each token offers to the tokens that look at it.",
        True,
        "signed",
    ),
    "v": (
        "Value V",
        "V = ln₁·W_v + b_v  (this head's HS columns)",
        "What each token hands over when it is looked at.",
        True,
        "signed",
    ),
    "scores": (
        "Attention scores",
        "scores = Q·Kᵀ / √HS   (−∞ above the diagonal)",
        "How well each query (row) matches each earlier key (column); no peeking ahead.",
        True,
        "signed",
    ),
    "att": (
        "Softmax weights",
        "att = softmax(scores) along each row",
        "Scores turned into weights that sum to 1 in every row.",
        True,
        "prob",
    ),
    "head_out": (
        "Weighted values",
        "out = att·V",
        "Each token's mix of the values of the tokens it attends to.",
        True,
        "signed",
    ),
    "attn_concat": (
        "Heads joined",
        "concat = [out₀ | out₁ | …]",
        "The heads' outputs side by side, back to C numbers per token.",
        False,
        "signed",
    ),
    "attn_proj": ("Projection", "proj = concat·W_o + b_o", "A learned mix of the heads' outputs.", False, "signed"),
    "res_1": ("Residual 1", "x₁ = x + proj", "Attention's result is added to the residual stream.", False, "signed"),
    "ln_2": ("LayerNorm 2", "ln₂ = (x₁ − mean)·rstd·γ + β", "Normalised again before the MLP.", False, "signed"),
    "mlp_pre": ("MLP up", "pre = ln₂·W_fc + b_fc   (C → 4C)", "Each token widened to 4C features.", False, "signed"),
    "mlp_act": (
        "GELU",
        "act = ½·pre·(1 + tanh(√(2/π)·(pre + {gelu_cubic}·pre³)))",
        "A smooth switch: negative features are mostly turned off.",
        False,
        "signed",
    ),
    "mlp_out": ("MLP down", "mlp = act·W_proj + b_proj   (4C → C)", "Back to C numbers per token.", False, "signed"),
    "res_2": (
        "Residual 2",
        "x₂ = x₁ + mlp",
        "The MLP's result is added: the input of the next layer.",
        False,
        "signed",
    ),
    "ln_f": (
        "Final LayerNorm",
        "ln_f = (x − mean)·rstd·γ + β",
        "The last normalisation before reading out tokens.",
        False,
        "signed",
    ),
    "logits": (
        "Logits",
        "logits = ln_f·wteᵀ   (the head reuses the token embedding)",
        "A score for every vocabulary token as the next token, at every position.",
        False,
        "signed",
    ),
    "probs": (
        "Probabilities",
        "p = exp(z − max) / Σ exp(z − max)",
        "Softmax of each row of logits: the model's guess of the next token.",
        False,
        "prob",
    ),
    "chosen": (
        "Chosen token",
        "next = argmax p[last position]",
        "The most likely next token after the whole prompt (greedy choice).",
        False,
        "prob",
    ),
}
LAYER_KEYS = (
    "ln_1",
    "q",
    "k",
    "v",
    "scores",
    "att",
    "head_out",
    "attn_concat",
    "attn_proj",
    "res_1",
    "ln_2",
    "mlp_pre",
    "mlp_act",
    "mlp_out",
    "res_2",
)
# A model without attention: each block is its MLP alone (res_1 is the block's input, nothing to show).
MLP_ONLY_KEYS = ("ln_2", "mlp_pre", "mlp_act", "mlp_out", "res_2")
NO_ATTENTION = "This model has no attention (MLP only): each token's prediction sees that token alone."
FIRST_KEYS = ("tokenize", "wte", "wpe", "x0")
LAST_KEYS = ("ln_f", "logits", "probs", "chosen")


def short_float(x: float) -> str:
    """A constant as a formula writes it: 1e-5, not 1e-05."""
    return f"{x:g}".replace("e-0", "e-").replace("e+0", "e+")


@dataclass(frozen=True)
class Stage:
    """One step of the forward pass; `layer` is set for the stages inside a transformer block."""

    key: str
    layer: int | None = None

    @property
    def title(self) -> str:
        return STAGE_INFO[self.key][0]

    def formula(self, eps: float) -> str:
        """The stage's formula, with the model's constants written in (eps: its layer_norm_epsilon)."""
        from tinylm.core import GELU_CUBIC  # loaded already: formulas are shown beside a trace

        return STAGE_INFO[self.key][1].format(eps=short_float(eps), gelu_cubic=GELU_CUBIC)

    @property
    def description(self) -> str:
        return STAGE_INFO[self.key][2]

    @property
    def per_head(self) -> bool:
        return STAGE_INFO[self.key][3]

    @property
    def kind(self) -> str:
        return STAGE_INFO[self.key][4]

    @property
    def trace_name(self) -> str:
        """The trace entry holding this stage's matrix."""
        if self.layer is not None:
            return f"h.{self.layer}.{self.key}"
        return {"tokenize": "wte", "chosen": "probs"}.get(self.key, self.key)

    def label(self) -> str:
        return f"L{self.layer} {self.title}" if self.layer is not None else self.title


def layer_keys(attention: bool = True) -> tuple[str, ...]:
    """The stages of one block: attention's and the MLP's, or the MLP's alone."""
    return LAYER_KEYS if attention else MLP_ONLY_KEYS


def all_stages(n_layer: int, attention: bool = True) -> list[Stage]:
    """Every stage in the order the forward pass computes them (attention False: MLP-only blocks)."""
    stages = [Stage(k) for k in FIRST_KEYS]
    for layer in range(n_layer):
        stages += [Stage(k, layer) for k in layer_keys(attention)]
    return stages + [Stage(k) for k in LAST_KEYS]


def layer_input(trace, layer: int | None) -> np.ndarray:
    """The residual stream entering block `layer` (None: entering the final LayerNorm)."""
    n_layer = sum(1 for n in trace.names if n.endswith(".res_2"))
    before = (n_layer if layer is None else layer) - 1
    return trace["x0"] if before < 0 else trace[f"h.{before}.res_2"]


@dataclass
class StageView:
    """What the heatmap shows for a stage: values, labels, colour kind, masked cells, shape in words."""

    values: np.ndarray
    row_labels: list[str]
    col_labels: list[str] | None
    kind: str
    mask: np.ndarray | None
    shape: str


def stage_view(stage: Stage, trace, head: int, vocab: list[str]) -> StageView:
    """The matrix of one stage (one head's slice for per-head stages) with its axis labels."""
    tokens = list(trace.tokens)
    T = len(tokens)
    if stage.key == "tokenize":
        ids = np.asarray(trace.ids, dtype=np.float64)[None, :]
        return StageView(ids, ["id"], tokens, "sequential", None, f"(T,) = ({T},) (T tokens)")
    full = trace[stage.trace_name]
    if stage.key == "chosen":
        return StageView(full[-1:], [tokens[-1]], vocab, "prob", None, f"(V,) = ({full.shape[1]},) (V vocabulary)")
    if stage.per_head:
        values = full[head]
        shape = f"(NH,T,{'T' if stage.key in ('scores', 'att') else 'HS'}) = {full.shape}, head {head}"
    else:
        values = full
        letters = {"logits": "(T,V)", "probs": "(T,V)", "mlp_pre": "(T,4C)", "mlp_act": "(T,4C)"}.get(
            stage.key, "(T,C)"
        )
        shape = f"{letters} = {full.shape}"
    cols = tokens if stage.key in ("scores", "att") else vocab if stage.key in ("logits", "probs") else None
    mask = np.triu(np.ones((T, T), dtype=bool), 1) if stage.key == "att" else None
    return StageView(values, tokens, cols, stage.kind, mask, f"{shape} ({shape_words(shape)})")


SHAPE_WORDS = {"NH": "heads", "T": "tokens", "HS": "head size", "C": "embedding", "4C": "MLP width", "V": "vocabulary"}


def shape_words(shape: str) -> str:
    """What the letters of a shape such as (NH,T,HS) stand for: 'NH heads, T tokens, HS head size'."""
    letters = shape[shape.index("(") + 1 : shape.index(")")].split(",")
    return ", ".join(f"{x} {SHAPE_WORDS[x]}" for x in dict.fromkeys(letters) if x in SHAPE_WORDS)
