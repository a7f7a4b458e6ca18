"""One AdamW update explained for one weight: every number between its gradient and its new value.

The update is the trainer's own (its configuration, moments and step count, the optimizer kernel),
taken on one window's gradient instead of a random batch. It is computed on copies: the model's
weights and the trainer's moments change only when `apply_adamw_step` is called.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .config import TrainConfig
from .errors import ConfigError
from .schedule import get_lr

CLIP_EPS = 1e-6  # the trainer clips by grad_clip / (norm + 1e-6)


@dataclass
class AdamWStep:
    """One AdamW step of weight `name[index]`, with the quantities of PyTorch's AdamW, and the loss
    of the window before and after the whole model takes the step."""

    name: str
    index: tuple[int, ...]
    step: int  # the optimizer step this would be (1-based)
    lr: float  # the learning rate at this step, from the schedule
    phase: str  # where the schedule is: "warmup", "cosine decay" or "floor"
    learning_rate: float
    min_lr: float
    warmup_steps: int
    decay_steps: int
    grad: float  # dL/dw on this window
    grad_norm: float  # the global norm of every gradient
    grad_clip: float  # the norm it is clipped to (0: no clipping)
    clip_factor: float  # 1, or grad_clip / (grad_norm + 1e-6)
    grad_clipped: float
    beta1: float
    beta2: float
    eps: float
    m_prev: float
    v_prev: float
    m: float  # beta1 m_prev + (1 - beta1) g
    v: float  # beta2 v_prev + (1 - beta2) g^2
    bias_correction1: float  # 1 - beta1^step
    bias_correction2: float  # 1 - beta2^step
    m_hat: float
    v_hat: float
    weight_decay: float  # the configured rate
    decayed: bool  # 2-D weights decay, biases and LayerNorm parameters do not
    weight_before: float
    weight_after: float  # what the optimizer kernel wrote
    loss_before: float
    loss_after: float
    _state: dict = field(default_factory=dict, repr=False)  # the updated buffers and what they replace

    @property
    def decay_change(self) -> float:
        """-lr * weight_decay * w (decoupled decay), 0 for a weight that does not decay."""
        return -self.lr * self.weight_decay * self.weight_before if self.decayed else 0.0

    @property
    def adam_change(self) -> float:
        """-lr * m_hat / (sqrt(v_hat) + eps)."""
        return -self.lr * self.m_hat / (math.sqrt(self.v_hat) + self.eps)

    @property
    def change(self) -> float:
        return self.weight_after - self.weight_before


def _phase(step: int, c: TrainConfig) -> str:
    if step < c.warmup_steps:
        return "warmup"
    return "floor" if step > c.decay_steps else "cosine decay"


def explain_adamw_step(model, ids, targets, name: str, index, trainer=None, config: TrainConfig | None = None):
    """The AdamW step the trainer would take on the window ids -> targets (T,), for weight name[index].

    Without a trainer (a model opened for inspection) the configuration is `config` (default
    TrainConfig()) and the moments start at zero, as at a run's first step."""
    if name not in model.params:
        raise ConfigError(f"{name!r} is not a weight of this model")
    w = model.params[name]
    index = tuple(int(i) for i in np.atleast_1d(index))
    if len(index) != w.ndim or any(not 0 <= i < n for i, n in zip(index, w.shape)):
        raise ConfigError(f"{index} is not a cell of {name} {w.shape}")
    c = trainer.config if trainer is not None else (config or TrainConfig()).validate()
    K = model.kernels
    ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(1, -1)
    targets = np.ascontiguousarray(targets, dtype=np.int64).reshape(1, -1)
    flat_i = model.layout.offsets[name] + int(np.ravel_multi_index(index, w.shape))
    if model.device != "cpu":
        raise ConfigError("the AdamW step is explained on the CPU: use the model's CPU copy (model.on('cpu'))")
    with model.lock:
        step0 = trainer.step_count if trainer is not None else 0
        # copies (read from the device when the trainer trains a GPU copy of this model)
        m_prev = np.array(trainer.kernels.to_host(trainer.m)) if trainer is not None else np.zeros_like(model.flat)
        v_prev = np.array(trainer.kernels.to_host(trainer.v)) if trainer is not None else np.zeros_like(model.flat)
        loss_before = model.forward(ids, targets)
        model.backward()
        grads = model.grad_flat.copy()  # the model's gradient buffer is scratch, rewritten every step
        norm = float(K.grad_norm(grads))
        factor = c.grad_clip / (norm + CLIP_EPS) if c.grad_clip > 0 and norm > c.grad_clip else 1.0
        grad = float(grads[flat_i])
        if factor != 1.0:
            K.scale_inplace(grads, factor)
        lr = get_lr(step0, c.learning_rate, c.min_lr, c.warmup_steps, c.decay_steps)
        before = model.flat.copy()
        m, v = m_prev.copy(), v_prev.copy()
        try:
            K.adamw_update(model.flat, grads, m, v, lr, c.beta1, c.beta2, c.eps, c.weight_decay, step0 + 1,
                           model.layout.n_decay)  # fmt: skip
            after = model.flat.copy()
            loss_after = model.forward(ids, targets)
        finally:
            model.flat[...] = before
    step = step0 + 1
    bc1, bc2 = 1.0 - c.beta1**step, 1.0 - c.beta2**step
    return AdamWStep(
        name=name, index=index, step=step, lr=lr, phase=_phase(step0, c), learning_rate=c.learning_rate,
        min_lr=c.min_lr, warmup_steps=c.warmup_steps, decay_steps=c.decay_steps,
        grad=grad, grad_norm=norm, grad_clip=c.grad_clip, clip_factor=factor, grad_clipped=float(grads[flat_i]),
        beta1=c.beta1, beta2=c.beta2, eps=c.eps, m_prev=float(m_prev[flat_i]), v_prev=float(v_prev[flat_i]),
        m=float(m[flat_i]), v=float(v[flat_i]), bias_correction1=bc1, bias_correction2=bc2,
        m_hat=float(m[flat_i]) / bc1, v_hat=float(v[flat_i]) / bc2,
        weight_decay=c.weight_decay, decayed=flat_i < model.layout.n_decay,
        weight_before=float(before[flat_i]), weight_after=float(after[flat_i]),
        loss_before=loss_before, loss_after=loss_after,
        _state={"before": before, "after": after, "m": m, "v": v, "trainer": trainer, "step0": step0},
    )  # fmt: skip


def apply_adamw_step(model, update: AdamWStep) -> None:
    """Take the explained step for real: the model's weights (and the trainer's moments and step
    count, when it had a trainer) become the updated ones, on the trainer's device too when it trains a
    copy of this model there. Refused if the weights changed since."""
    s = update._state
    trainer = s["trainer"]
    with model.lock:
        stale = not np.array_equal(model.flat, s["before"])
        if trainer is not None and trainer.step_count != s["step0"]:
            stale = True
        if stale:
            raise ConfigError("the weights changed since this update was computed: compute it again")
        model.flat[...] = s["after"]
        if trainer is not None:
            K = trainer.kernels
            K.copy_in(trainer.m, s["m"])
            K.copy_in(trainer.v, s["v"])
            if trainer.model is not model:  # the GPU copy the trainer trains
                trainer.model.kernels.copy_in(trainer.model.flat, s["after"])
            trainer.step_count += 1
