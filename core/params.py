"""The parameter table: every tensor's Hugging Face GPT-2 name and shape, laid out in one flat buffer."""

from __future__ import annotations

import math

import numpy as np

from tinylm.kernels.decode import BLOCK_TENSORS

from .config import ModelConfig

# The shape of each per-block tensor for a width C.
_BLOCK_SHAPES = {
    "ln_1.weight": lambda C: (C,),
    "ln_1.bias": lambda C: (C,),
    "attn.c_attn.weight": lambda C: (C, 3 * C),
    "attn.c_attn.bias": lambda C: (3 * C,),
    "attn.c_proj.weight": lambda C: (C, C),
    "attn.c_proj.bias": lambda C: (C,),
    "ln_2.weight": lambda C: (C,),
    "ln_2.bias": lambda C: (C,),
    "mlp.c_fc.weight": lambda C: (C, 4 * C),
    "mlp.c_fc.bias": lambda C: (4 * C,),
    "mlp.c_proj.weight": lambda C: (4 * C, C),
    "mlp.c_proj.bias": lambda C: (C,),
}
# (suffix, shape-maker) of a block's tensors, in the order the decoding kernel's offset table uses.
_BLOCK = tuple((suffix, _BLOCK_SHAPES[suffix]) for suffix in BLOCK_TENSORS)


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every trained tensor's name and shape, in checkpoint order."""
    C = cfg.n_embd
    shapes = {"transformer.wte.weight": (cfg.vocab_size, C)}
    if cfg.positional == "learned":
        shapes["transformer.wpe.weight"] = (cfg.block_size, C)
    for i in range(cfg.n_layer):
        for suffix, shape in _BLOCK:
            shapes[f"transformer.h.{i}.{suffix}"] = shape(C)
    shapes["transformer.ln_f.weight"] = (C,)
    shapes["transformer.ln_f.bias"] = (C,)
    return shapes


class ParamLayout:
    """Names, shapes and offsets of the tensors in one flat buffer; 2-D weights first, so AdamW's
    weight decay applies to the prefix [0, n_decay) and one vector operation covers each group."""

    def __init__(self, cfg: ModelConfig):
        shapes = param_shapes(cfg)
        ordered = [n for n, s in shapes.items() if len(s) == 2] + [n for n, s in shapes.items() if len(s) != 2]
        self.shapes = {n: shapes[n] for n in ordered}
        self.offsets: dict[str, int] = {}
        offset = 0
        for name, shape in self.shapes.items():
            self.offsets[name] = offset
            offset += math.prod(shape)
        self.size = offset
        self.n_decay = sum(math.prod(s) for s in self.shapes.values() if len(s) == 2)

    def views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Named views into a flat buffer with this layout (checkpoint order is kept by names)."""
        return {
            name: flat[self.offsets[name] : self.offsets[name] + math.prod(shape)].reshape(shape)
            for name, shape in self.shapes.items()
        }


def sincos_table(block_size: int, n_embd: int) -> np.ndarray:
    """The fixed sine/cosine position table of 'Attention Is All You Need': (T, C), float64."""
    pos = np.arange(block_size, dtype=np.float64)[:, None]
    freq = np.exp(-math.log(10000.0) * np.arange(0, n_embd, 2, dtype=np.float64) / n_embd)
    table = np.zeros((block_size, n_embd))
    table[:, 0::2] = np.sin(pos * freq)
    table[:, 1::2] = np.cos(pos * freq)
    return table


INIT_STD = 0.02  # GPT-2's initializer_range: the standard deviation of the initial weights


def init_params(views: dict[str, np.ndarray], cfg: ModelConfig, rng: np.random.Generator) -> None:
    """GPT-2 initialisation as in nanoGPT: N(0, INIT_STD), residual projections scaled by 1/sqrt(2L),
    zero biases, unit LayerNorm gains."""
    proj_std = INIT_STD / math.sqrt(2 * cfg.n_layer)
    for name, view in views.items():
        if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            view[...] = 1.0
        elif name.endswith(".bias"):
            view[...] = 0.0
        elif name.endswith(("attn.c_proj.weight", "mlp.c_proj.weight")):
            view[...] = rng.normal(0.0, proj_std, size=view.shape)
        else:
            view[...] = rng.normal(0.0, INIT_STD, size=view.shape)
    if not cfg.attention:
        zero_attention(views)


ATTENTION_SUFFIXES = ("attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias")


def zero_attention(views: dict[str, np.ndarray]) -> None:
    """Every attention weight and bias to 0: a GPT-2 whose attention branch adds exactly nothing
    (values, hence weighted sums, are 0 and c_proj maps them to its zero bias), which is how an
    MLP-only model is saved so that any GPT-2 implementation computes the same function."""
    for name, view in views.items():
        if name.endswith(ATTENTION_SUFFIXES):
            view[...] = 0.0
