"""Model and training settings as dataclasses, validated with messages that say what to change."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .errors import ConfigError

POSITIONAL_KINDS = ("learned", "sincos")
LN_EPS = 1e-5  # GPT-2's layer_norm_epsilon: added to the variance in every LayerNorm
DEFAULT_SEED = 1337  # nanoGPT's: weights and batches are reproducible run to run


@dataclass
class ModelConfig:
    """Shape of a GPT-2 model."""

    vocab_size: int = 65  # V: set from the tokenizer
    block_size: int = 64  # T: longest context the model sees (n_positions)
    n_layer: int = 4  # L: transformer blocks
    n_head: int = 4  # NH: attention heads per block
    n_embd: int = 128  # C: width of the residual stream; head size HS = C / NH
    dropout: float = 0.0  # embedding and residual dropout while training
    positional: str = "learned"  # "learned" table or fixed "sincos" table
    layer_norm_epsilon: float = LN_EPS  # added to the variance in every LayerNorm
    bos_token_id: int | None = None  # kept for the checkpoint's config.json; tinylm prepends nothing
    eos_token_id: int | None = None  # generation may stop at this token
    attention: bool = True  # False: every block is its MLP alone (attention weights stay zero, unused)

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    def validate(self) -> ModelConfig:
        """Raise ConfigError naming the first setting that cannot work."""
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not _is_int(value) or value <= 0:
                raise ConfigError(f"{name} must be a positive whole number, got {value!r}")
        if self.vocab_size < 2:
            raise ConfigError(f"vocab_size {self.vocab_size} is too small: a model needs at least 2 tokens")
        if self.n_embd % self.n_head:
            raise ConfigError(
                f"n_embd {self.n_embd} is not divisible by n_head {self.n_head}: "
                f"choose n_embd a multiple of {self.n_head} or a n_head that divides {self.n_embd}"
            )
        if not _is_number(self.dropout) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if not isinstance(self.positional, str) or self.positional not in POSITIONAL_KINDS:
            raise ConfigError(f"positional must be one of {', '.join(POSITIONAL_KINDS)}, got {self.positional!r}")
        if self.positional == "sincos" and self.n_embd % 2:
            raise ConfigError(f"sincos positions need an even n_embd, got {self.n_embd}")
        eps = self.layer_norm_epsilon
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (math.isfinite(eps) and 0 < eps < 1):
            raise ConfigError(f"layer_norm_epsilon must be a small positive number, got {eps!r}")
        if not isinstance(self.attention, bool):
            raise ConfigError(f"attention must be true or false, got {self.attention!r}")
        for name in ("bos_token_id", "eos_token_id"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < self.vocab_size
            ):
                raise ConfigError(f"{name} must be a token id in [0, {self.vocab_size}) or none, got {value!r}")
        return self

    def num_params(self) -> int:
        """Number of parameters the model holds (a sine/cosine table is not one); without attention its
        weights are still held, as zeros, so that the checkpoint is a GPT-2 (see attention_params)."""
        C, L, V, T = self.n_embd, self.n_layer, self.vocab_size, self.block_size
        per_layer = 2 * C + (C * 3 * C + 3 * C) + (C * C + C) + 2 * C + (C * 4 * C + 4 * C) + (4 * C * C + C)
        wpe = T * C if self.positional == "learned" else 0
        return V * C + wpe + L * per_layer + 2 * C

    def attention_params(self) -> int:
        """Parameters of the attention branches (ln_1, c_attn and c_proj of every block)."""
        C = self.n_embd
        return self.n_layer * (2 * C + C * 3 * C + 3 * C + C * C + C)

    def trained_params(self) -> int:
        """Parameters training changes: all of them, less attention's when the model has none."""
        return self.num_params() - (0 if self.attention else self.attention_params())

    def flops_per_token(self, T: int | None = None) -> int:
        """Forward+backward FLOPs for one token at context T (matmuls and attention, as in PaLM's estimate)."""
        T = self.block_size if T is None else T
        C, L, V = self.n_embd, self.n_layer, self.vocab_size
        if not self.attention:  # the MLP's 8C^2 per layer and the head; no scores, no projections
            return 6 * (L * 8 * C * C + V * C)
        matmul_params = L * 12 * C * C + V * C
        return 6 * matmul_params + 6 * L * C * T  # 6 = 2 (multiply-add) x 3 (forward, two backward matmuls)


@dataclass
class TrainConfig:
    """How to train: batches, optimizer, schedule, evaluation."""

    batch_size: int = 12  # B: windows per step
    max_steps: int = 2000  # optimizer steps
    learning_rate: float = 1e-3  # peak learning rate after warmup
    min_lr: float = 1e-4  # floor of the cosine decay
    warmup_steps: int = 100  # linear warmup from lr/(warmup+1)
    lr_decay_steps: int | None = None  # cosine ends here; None = max_steps
    weight_decay: float = 0.1  # AdamW decay, 2-D weights only
    beta1: float = 0.9
    beta2: float = 0.99
    eps: float = 1e-8
    grad_clip: float = 1.0  # clip the global gradient norm to this; 0 turns clipping off
    eval_interval: int = 250  # steps between validation runs
    eval_batches: int = 20  # batches averaged for validation loss and accuracy
    val_fraction: float = 0.1  # last share of the corpus held out
    seed: int = DEFAULT_SEED
    context: int | None = None  # tokens per training window; None = the model's whole context (block_size)

    @property
    def decay_steps(self) -> int:
        return self.max_steps if self.lr_decay_steps is None else self.lr_decay_steps

    def validate(self) -> TrainConfig:
        """Raise ConfigError naming the first setting that cannot work (of the wrong type, too)."""
        for name in ("batch_size", "max_steps", "eval_interval", "eval_batches"):
            value = getattr(self, name)
            if not _is_int(value) or value <= 0:
                raise ConfigError(f"{name} must be a positive whole number, got {value!r}")
        if self.context is not None and (not _is_int(self.context) or self.context <= 0):
            raise ConfigError(f"context must be a positive whole number or none, got {self.context!r}")
        for name in ("learning_rate", "min_lr", "weight_decay", "beta1", "beta2", "eps", "grad_clip", "val_fraction"):
            value = getattr(self, name)
            if not _is_number(value):
                raise ConfigError(f"{name} must be a finite number, got {value!r}")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be a positive number, got {self.learning_rate!r}")
        if not 0 <= self.min_lr <= self.learning_rate:
            raise ConfigError(f"min_lr must be between 0 and learning_rate ({self.learning_rate}), got {self.min_lr}")
        if not _is_int(self.warmup_steps) or self.warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be 0 or more, got {self.warmup_steps!r}")
        if self.lr_decay_steps is not None and (not _is_int(self.lr_decay_steps) or self.lr_decay_steps <= 0):
            raise ConfigError(f"lr_decay_steps must be positive, got {self.lr_decay_steps!r}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be 0 or more, got {self.weight_decay}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ConfigError(f"beta1 and beta2 must be in [0, 1), got {self.beta1}, {self.beta2}")
        if self.eps <= 0:
            raise ConfigError(f"eps must be positive, got {self.eps}")
        if self.grad_clip < 0:
            raise ConfigError(f"grad_clip must be 0 (off) or positive, got {self.grad_clip}")
        if not 0 < self.val_fraction < 0.5:
            raise ConfigError(f"val_fraction must be between 0 and 0.5, got {self.val_fraction}")
        check_seed(self.seed)
        return self


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


MAX_SEED = 2**63 - 1


def check_seed(seed, name: str = "seed") -> None:
    """Refuse a seed numpy's generators cannot take (negative, fractional, or not a number)."""
    if not _is_int(seed) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"{name} must be a whole number from 0 to {MAX_SEED}, got {seed!r}")


def config_to_dict(cfg) -> dict:
    """A dataclass as a JSON-ready dict."""
    return dataclasses.asdict(cfg)


def config_from_dict(cls, data: dict):
    """Build a dataclass from a dict, ignoring unknown keys and rejecting wrong ones with ConfigError."""
    names = {f.name for f in dataclasses.fields(cls)}
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__} settings must be a JSON object, got {type(data).__name__}")
    try:
        return cls(**{k: v for k, v in data.items() if k in names})
    except TypeError as exc:
        raise ConfigError(f"bad {cls.__name__} settings: {exc}") from None
