"""The learning-rate schedule: linear warmup, then cosine decay to a floor (as nanoGPT)."""

import math


def get_lr(step: int, learning_rate: float, min_lr: float, warmup_steps: int, decay_steps: int) -> float:
    """Learning rate for optimizer step `step` (0-based)."""
    if step < warmup_steps:
        return learning_rate * (step + 1) / (warmup_steps + 1)
    if step > decay_steps:
        return min_lr
    span = max(decay_steps - warmup_steps, 1)
    ratio = (step - warmup_steps) / span
    coeff = 0.5 * (1.0 + math.cos(math.pi * ratio))  # 1 -> 0
    return min_lr + coeff * (learning_rate - min_lr)
