"""Decoding strategies: greedy, temperature, top-k, top-p (combinable), seeded."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import check_seed
from .errors import ConfigError


@dataclass
class Sampling:
    """How to pick the next token from the model's logits."""

    temperature: float = 1.0  # divides the logits; below 1 sharpens, above 1 flattens
    top_k: int = 0  # keep only the k most likely tokens; 0 keeps all
    top_p: float = 1.0  # keep the smallest set whose probability reaches p; 1 keeps all
    greedy: bool = False  # always take the most likely token
    seed: int | None = None  # seeds the sampler; None draws a fresh seed

    def validate(self) -> Sampling:
        """Raise ConfigError naming the first setting that cannot work."""
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ConfigError(f"temperature must be a positive number, got {self.temperature} (use greedy for 0)")
        if self.top_k < 0:
            raise ConfigError(f"top_k must be 0 (off) or positive, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.seed is not None:
            check_seed(self.seed)
        return self

    def describe(self) -> str:
        """A short label such as 'T=0.8 top-k=10 top-p=0.9' or 'greedy'."""
        if self.greedy:
            return "greedy"
        parts = [f"T={self.temperature:g}"]
        if self.top_k:
            parts.append(f"top-k={self.top_k}")
        if self.top_p < 1:
            parts.append(f"top-p={self.top_p:g}")
        return " ".join(parts)

    def distribution(self, logits: np.ndarray) -> np.ndarray:
        """The probabilities (V,) the next token is drawn from, after every filter."""
        return filtered_distribution(logits, self)

    def rng(self) -> np.random.Generator:
        """The sampler's generator (the seed is checked here too: greedy decoding skips validate)."""
        if self.seed is not None:
            check_seed(self.seed)
        return np.random.default_rng(self.seed)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax in float64 (V,)."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def filtered_distribution(logits: np.ndarray, sampling: Sampling) -> np.ndarray:
    """Apply greedy, temperature, top-k and top-p, in that order, to one row of logits."""
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    if sampling.greedy:
        probs = np.zeros_like(z)
        probs[int(np.argmax(z))] = 1.0
        return probs
    sampling.validate()
    z = z / sampling.temperature
    if 0 < sampling.top_k < z.size:
        kth = np.partition(z, -sampling.top_k)[-sampling.top_k]
        z = np.where(z >= kth, z, -np.inf)
    probs = softmax(z)
    if sampling.top_p < 1.0:
        order = np.argsort(-probs, kind="stable")
        cumulative = np.cumsum(probs[order])
        # Keep tokens until the running total reaches p; the first token is always kept.
        keep = int(np.searchsorted(cumulative, sampling.top_p, side="left")) + 1
        mask = np.zeros_like(probs, dtype=bool)
        mask[order[:keep]] = True
        probs = np.where(mask, probs, 0.0)
        probs /= probs.sum()
    return probs


def draw(probs: np.ndarray, rng: np.random.Generator) -> int:
    """One token id drawn from probs (inverse CDF, so a seed fixes the draw)."""
    cdf = np.cumsum(probs)
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), probs.size - 1))
