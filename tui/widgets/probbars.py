"""Horizontal probability bars for the most likely next tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rich.text import Text
from textual.widget import Widget

from ..tokens import visible

_EIGHTHS = " ▏▎▍▌▋▊▉█"


def display_token(text: str, width: int | None = None) -> str:
    """A token's text made visible as the grids show it (space -> ␣, newline -> ⏎), cropped to `width`
    with an ellipsis."""
    shown = "".join(c if c.isprintable() else "·" for c in visible(text))  # zero-width ones as ·
    if width is not None and len(shown) > width:
        shown = shown[: max(width - 1, 0)] + "…"
    return shown


def bar(fraction: float, width: int) -> str:
    """A bar of `width` cells filled to `fraction`, in eighths of a cell."""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    full, rest = divmod(eighths, 8)
    return ("█" * full + (_EIGHTHS[rest] if rest else "")).ljust(width)


def percent(p: float) -> str:
    """A probability as a percentage in at most 8 characters: '12.3%', and below 0.1% two significant digits
    ('0.0021%', '2.1e-05%') rather than a '0.0%' that would hide how unlikely (and how unequal) they are."""
    pct = 100.0 * p
    return f"{pct:.1f}%" if pct >= 0.095 or pct == 0 else f"{pct:.2g}%"


@dataclass
class TokenProb:
    """One bar: a token, its probability after the sampling settings, and its raw (T=1) probability."""

    id: int
    text: str
    prob: float
    raw_prob: float | None = None


def top_tokens(probs: np.ndarray, tokenizer, k: int = 10, raw_probs: np.ndarray | None = None) -> list[TokenProb]:
    """The k most likely tokens of a distribution, most likely first (ties broken by lower id)."""
    probs = np.asarray(probs, dtype=np.float64)
    k = min(k, probs.shape[0])
    order = np.lexsort((np.arange(probs.shape[0]), -probs))[:k]
    return [
        TokenProb(
            int(i), tokenizer.token_label(int(i)), float(probs[i]), None if raw_probs is None else float(raw_probs[i])
        )
        for i in order
    ]


class ProbBars(Widget):
    """Ten rows: token, bar (full width = probability 1), probability, and the raw one when sampling changes it."""

    DEFAULT_CSS = """
    ProbBars { height: auto; min-height: 3; }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.items: list[TokenProb] = []
        self.highlight: int | None = None  # id of the token that was picked

    def set_items(self, items: Sequence[TokenProb], highlight: int | None = None) -> None:
        """Show these bars and redraw."""
        self.items = list(items)
        self.highlight = highlight
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        return max(len(self.items), 1)

    def render(self) -> Text:
        if not self.items:
            return Text("no prediction yet", style="dim")
        width = self.content_size.width
        # the raw numbers are shown when any would read differently from the sampled ones
        show_raw = any(it.raw_prob is not None and percent(it.raw_prob) != percent(it.prob) for it in self.items)
        label_w = max(8, min(16, width // 6))  # wider panels show more of each token
        num_w = 20 if show_raw else 9  # " 0.0021%" or " 12.3% (0.0021%)"
        bar_w = max(width - label_w - num_w - 2, 3)
        lines = []
        for it in self.items:
            line = Text(no_wrap=True, overflow="crop")
            style = "bold reverse" if it.id == self.highlight else ""
            line.append(f"{display_token(it.text, label_w):<{label_w}}", style=style or "bold")
            line.append(" ")
            line.append(bar(it.prob, bar_w), style="green" if it.id != self.highlight else "bold yellow")
            line.append(f" {percent(it.prob):>8}")
            if show_raw and it.raw_prob is not None:
                line.append(f" ({percent(it.raw_prob)})", style="dim")
            lines.append(line)
        return Text("\n").join(lines)
