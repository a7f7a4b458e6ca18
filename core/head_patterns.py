"""What an attention head does, in words computed from its weights: uniform, one token back, the first token."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UNIFORM = 0.9  # rows keeping at least this share of the entropy of an even spread (log of the tokens seen) are uniform
FOCUSED = 0.5  # a position is named when it gets at least this much of a row's weight, on average over the rows
LEANS = 0.3  # ...and named as a leaning from this much
MAX_BACK = 3  # offsets named: itself (0), one, two and three tokens back


@dataclass(frozen=True)
class HeadPattern:
    """One head's behaviour on a prompt: its kind, the number behind it and a short phrase."""

    kind: str  # uniform | self | back | first | mixed | single (a one-token prompt)
    # self, back and first look there (value >= FOCUSED) or lean there (LEANS <= value < FOCUSED)
    value: float  # the mean weight on the named position, or the mean relative entropy (uniform, mixed)
    offset: int = 0  # for "back": how many tokens back
    entropy: float = 1.0  # mean over rows t >= 1 of H(row t) / log(t + 1): 1 is an even spread

    @property
    def leans(self) -> bool:
        """A tendency rather than a pattern: the named position gets under FOCUSED of the weight."""
        return self.kind in ("self", "back", "first") and self.value < FOCUSED

    @property
    def text(self) -> str:
        if self.kind == "uniform":
            return f"spreads evenly (entropy {self.entropy:.0%} of uniform)"
        if self.kind == "self":
            return f"{'leans to' if self.leans else 'attends to'} itself ({self.value:.2f})"
        if self.kind == "back":
            what = "one token" if self.offset == 1 else f"{self.offset} tokens"
            return f"{'leans' if self.leans else 'looks'} {what} back ({self.value:.2f})"
        if self.kind == "first":
            return f"{'leans to' if self.leans else 'attends to'} the first token ({self.value:.2f})"
        if self.kind == "single":
            return "one token: nothing to choose"
        return f"mixed (entropy {self.entropy:.0%} of uniform)"

    @property
    def short(self) -> str:
        """The same in a few characters, for a line that names many heads: 'even', '1 back (0.83)'."""
        lean = "leans " if self.leans else ""
        if self.kind == "back":
            return f"{lean}{self.offset} back ({self.value:.2f})"
        if self.kind in ("self", "first"):
            return f"{lean}{self.kind} ({self.value:.2f})"
        return {"uniform": "even", "single": "one token"}.get(self.kind, "mixed")


def relative_entropy(att: np.ndarray) -> np.ndarray:
    """Per row t >= 1 of a causal (T, T) attention map: its entropy over the t + 1 visible positions
    divided by log(t + 1), the entropy of an even spread (1 = uniform, 0 = all weight on one token)."""
    T = att.shape[0]
    p = np.tril(np.asarray(att, dtype=np.float64))[1:]  # (T-1, T) rows 1..T-1, masked cells as 0
    logs = np.log(p, out=np.zeros_like(p), where=p > 0)
    return -(p * logs).sum(axis=1) / np.log(np.arange(2, T + 1))


def diagonal_share(att: np.ndarray, offset: int) -> float:
    """Mean weight row t gives position t - offset, over the rows t >= max(offset, 1)."""
    T = att.shape[0]
    rows = np.arange(max(offset, 1), T)
    return float(np.asarray(att, dtype=np.float64)[rows, rows - offset].mean()) if len(rows) else 0.0


def describe_head(att: np.ndarray) -> HeadPattern:
    """The pattern of one head's (T, T) causal attention map: uniform when its rows keep UNIFORM of an even
    spread's entropy, else the position (itself, 1-3 tokens back, the first token) with the largest mean weight
    when that is at least LEANS, else mixed. Row 0 sees only itself, so rows t >= 1 count; the first token's
    share counts rows t >= 2 (at t = 1 it is also the previous token)."""
    T = att.shape[0]
    if T < 2:
        return HeadPattern("single", 1.0)
    entropy = float(relative_entropy(att).mean())
    if entropy >= UNIFORM:
        return HeadPattern("uniform", entropy, entropy=entropy)
    a = np.asarray(att, dtype=np.float64)
    found = [("first", float(a[2:, 0].mean()) if T > 2 else 0.0, 0)]
    found += [("self" if k == 0 else "back", diagonal_share(a, k), k) for k in range(min(MAX_BACK, T - 1) + 1)]
    kind, value, offset = max(found, key=lambda f: f[1])
    if value >= LEANS:
        return HeadPattern(kind, value, offset, entropy)
    return HeadPattern("mixed", entropy, entropy=entropy)


def describe_heads(att: np.ndarray) -> list[list[HeadPattern]]:
    """describe_head for every layer and head of an (L, NH, T, T) stack."""
    return [[describe_head(head) for head in layer] for layer in att]


def heads_summary(patterns: list[list[HeadPattern]], limit: int = 3, short: bool = False) -> str:
    """One line for a whole model: the clearest heads by name ('L0 H1 looks one token back (0.83)'; with
    `short`, 'L0 H1 1 back (0.83)'), (leanings after patterns), then how many spread evenly or mix; 'all N heads
    still spread evenly' when none has a pattern yet."""
    heads = [(l, h, p) for l, layer in enumerate(patterns) for h, p in enumerate(layer)]
    even = sum(p.kind == "uniform" for _, _, p in heads)
    if even == len(heads):
        return f"all {len(heads)} heads still spread evenly"
    named = sorted(
        (x for x in heads if x[2].kind not in ("uniform", "mixed", "single")), key=lambda x: (x[2].leans, -x[2].value)
    )
    parts = [f"L{l} H{h} {p.short if short else p.text}" for l, h, p in named[:limit]]
    if len(named) > limit:
        parts.append(f"{len(named) - limit} more with a pattern")
    if even:
        parts.append(f"{even} of {len(heads)} even")
    mixed = sum(p.kind == "mixed" for _, _, p in heads)
    if mixed:
        parts.append(f"{mixed} mixed")
    return "; ".join(parts)
