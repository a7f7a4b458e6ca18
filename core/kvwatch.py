"""The KV cache, watched: how it fills, what it costs in memory, and the work it saves per token
against recomputing the whole prefix, measured on the model's own passes.

FLOPs count multiply-adds as 2 and only the matrix products and attention (LayerNorm, GELU and
softmax are a few per element, under 1% at these sizes), for one sequence (B = 1).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .generate import KVCache, check_generation_memory
from .parallel import inference_pass


def kv_bytes(config, length: int, itemsize: int = 4) -> int:
    """Bytes of keys and values for `length` positions: L layers x (K, V) x NH heads x HS, per position
    (none for a model without attention)."""
    return 2 * config.n_layer * config.n_embd * length * itemsize if config.attention else 0


def decode_flops(config, pos: int) -> int:
    """One token at position pos with the cache: per layer the four products of one row
    (q,k,v C x 3C, projection C x C, MLP C x 4C and 4C x C: 24 C^2) and attention over pos + 1 keys
    (scores and weighted values: 4 C (pos + 1)); then the LM head (2 C V)."""
    C, L, V = config.n_embd, config.n_layer, config.vocab_size
    if not config.attention:  # the MLP's two products alone
        return L * 16 * C * C + 2 * C * V
    return L * (24 * C * C + 4 * C * (pos + 1)) + 2 * C * V


def recompute_flops(config, T: int) -> int:
    """The same next token without a cache: a forward pass over all T positions (every row's
    products; causal attention, row t looking at t + 1 keys), the LM head on the last row only."""
    C, L, V = config.n_embd, config.n_layer, config.vocab_size
    if not config.attention:  # the last position's logits need its own row alone, but a pass computes all
        return L * 16 * C * C * T + 2 * C * V
    keys = T * (T + 1) // 2  # sum over rows of the keys each attends to
    return L * (24 * C * C * T + 4 * C * keys) + 2 * C * V


@dataclass(frozen=True)
class CacheStep:
    """One token appended: where it went in the cache, and the two ways of getting its logits."""

    token: int
    row: int  # the cache row (position) its keys and values were written to
    length: int  # positions filled after it
    cached_flops: int
    recompute_flops: int
    cached_s: float  # measured time of the cached step
    recompute_s: float  # measured time of the full forward over the same context
    max_abs_diff: float  # between the two ways' logits (the cache changes no number beyond rounding)
    dropped: int = 0  # tokens dropped from the front because the context was full (then a rebuild)

    @property
    def rebuilt(self) -> bool:
        return self.dropped > 0


class KVWatch:
    """A KV cache over one growing sequence, stepping one token at a time and measuring each step
    against the full recompute. When the context is full the oldest quarter is dropped and the cache
    rebuilt from the rest (a prefill), as generation does."""

    def __init__(self, model, prompt):
        self.model = model
        self.config = model.config
        self.context = [int(i) for i in model.encode_prompt(prompt)]
        check_generation_memory(model, len(self.context))
        self.cache = KVCache(model)
        self.steps: list[CacheStep] = []
        with model.lock, np.errstate(over="ignore", invalid="ignore"):
            t0 = time.perf_counter()
            self.logits = np.array(self.cache.prefill(np.array(self.context, dtype=np.int64)), dtype=np.float64)
            self.prefill_s = time.perf_counter() - t0
        self.prompt_length = len(self.context)  # tokens the prefill ran over
        self.prefill_flops = recompute_flops(self.config, len(self.context))

    @property
    def length(self) -> int:
        return self.cache.length

    @property
    def bytes_used(self) -> int:
        return kv_bytes(self.config, self.length, self.cache.k.dtype.itemsize)

    @property
    def bytes_total(self) -> int:
        return kv_bytes(self.config, self.config.block_size, self.cache.k.dtype.itemsize)

    def greedy_token(self) -> int:
        return int(np.argmax(self.logits))

    def _full(self, ids: np.ndarray) -> np.ndarray:
        """Next-token logits (V,) from a forward pass over every position of ids (T,)."""
        with inference_pass(self.model) as runner:
            runner.forward(ids[None, :], last_only=True)
            return np.array(runner.last_activations.logits[0], dtype=np.float64)

    def step(self, token: int | None = None) -> CacheStep:
        """Append token (default: the greedy one) and measure both ways of predicting the next."""
        token = self.greedy_token() if token is None else int(token)
        T, cfg = self.config.block_size, self.config
        dropped = 0
        self.context.append(token)
        with self.model.lock, np.errstate(over="ignore", invalid="ignore"):
            if self.cache.length >= T:
                keep = T - max(1, T // 4)
                dropped = len(self.context) - keep
                self.context = self.context[-keep:]
                t0 = time.perf_counter()
                logits = np.array(self.cache.prefill(np.array(self.context, dtype=np.int64)), dtype=np.float64)
                cached_s = time.perf_counter() - t0
                cached = recompute_flops(cfg, len(self.context))
                row = len(self.context) - 1
            else:
                row = self.cache.length
                t0 = time.perf_counter()
                logits = np.array(self.cache.step(token), dtype=np.float64)
                cached_s = time.perf_counter() - t0
                cached = decode_flops(cfg, row)
            ids = np.array(self.context, dtype=np.int64)
            t0 = time.perf_counter()
            full = self._full(ids)
            full_s = time.perf_counter() - t0
        self.logits = logits
        step = CacheStep(
            token,
            row,
            self.cache.length,
            cached,
            recompute_flops(cfg, len(ids)),
            cached_s,
            full_s,
            float(np.abs(logits - full).max()),
            dropped,
        )
        self.steps.append(step)
        return step
