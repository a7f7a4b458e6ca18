"""How much memory a new allocation can use now, so that sizes are refused before they are allocated."""

from __future__ import annotations

import os

from .errors import ConfigError


def available_memory() -> int | None:
    """Bytes a new allocation can use now: MemAvailable (or the free pages where there is no
    /proc/meminfo), capped by the cgroup limit of a container; None where none of them can be read."""
    have = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    have = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if have is None:
        try:
            have = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit != "max":
            with open("/sys/fs/cgroup/memory.current") as f:
                left = int(limit) - int(f.read())
            have = left if have is None else min(have, left)
    except (OSError, ValueError):
        pass
    return have


# ----- what running a model allocates beyond its weights (buffers.Activations with B = 1, no dropout) -----


def weight_bytes(cfg, itemsize: int = 4) -> int:
    """The model's weights, and a sine/cosine position table (not trained, but held beside them)."""
    sincos = cfg.block_size * cfg.n_embd if cfg.positional == "sincos" else 0
    return itemsize * (cfg.num_params() + sincos)


def kv_cache_bytes(cfg, itemsize: int = 4) -> int:
    """One sequence's KV cache at the full context: per layer K and V, n_positions x n_embd each."""
    return itemsize * cfg.n_layer * 2 * cfg.block_size * cfg.n_embd


def activation_bytes(cfg, T: int, *, keep_scores: bool, itemsize: int = 4) -> int:
    """The buffers of one forward pass over T tokens (buffers.Activations, B = 1, no dropout). Without
    keep_scores (a generation prefill) the recomputable intermediates share one slot across layers."""
    L, C, NH, V = cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.vocab_size
    kept = L if keep_scores else 1
    per_layer = T * (3 * C + C + 4 * C + C + 4)  # qkv, res1, fch, res2; both LayerNorms' mean and rstd
    slots = T * (C + C + 4 * C) + NH * T * T  # ln_1 (= ln_2 when shared), atty, GELU output; att
    if keep_scores:
        slots += T * C + NH * T * T + 2 * T * C  # ln_2 of its own, the raw scores, both projections
    rest = T * C + T * (C + 2) + 2 * T * V + T  # encoded, ln_f and its stats, logits and probs, losses
    return itemsize * (L * per_layer + kept * slots + rest) + 2 * 8 * T  # ids and targets (int64)


def trace_bytes(cfg, T: int, itemsize: int = 4) -> int:
    """A trace of T tokens: its forward pass's buffers (kept by the trace) and the arrays it adds: the
    token and position rows, and per layer q, k, v and the heads' outputs split by head (copies)."""
    return (
        activation_bytes(cfg, T, keep_scores=True, itemsize=itemsize)
        + 4 * (2 * T * cfg.n_embd)
        + (4 * cfg.n_layer * 4 * T * cfg.n_embd)
    )


def generation_bytes(cfg, T: int, itemsize: int = 4) -> int:
    """Generating after a T-token prompt: the KV cache (full context) and the prefill's buffers."""
    return kv_cache_bytes(cfg, itemsize) + activation_bytes(cfg, T, keep_scores=False, itemsize=itemsize)


def size_text(n: int) -> str:
    """Bytes as people read a memory size: '2.4 GiB', '37 MiB'."""
    return f"{n / (1 << 30):,.1f} GiB" if n >= 1 << 30 else f"{max(1, round(n / (1 << 20))):,} MiB"


def check_available(need: int, what: str, advice: str) -> None:
    """Raise ConfigError when `what` needs more than the memory available now (before it is allocated)."""
    have = available_memory()
    if have is not None and need > have:
        raise ConfigError(
            f"{what} needs about {size_text(need)} of memory and {size_text(max(have, 0))} is available; {advice}"
        )
