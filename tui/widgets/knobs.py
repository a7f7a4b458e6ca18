"""The sampling knobs: value ladders the keys step along, and the one-line display of the settings."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

TEMPERATURES = (0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0)
TOP_KS = (1, 2, 3, 5, 10, 20, 50, 0)  # stepping down from 0 (off) reaches 50 first
TOP_PS = (0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0)  # 1 = off


def neighbour(values: tuple, current: float, delta: int) -> float:
    """The next value up or down a ladder from `current` (which need not be on it)."""
    if delta > 0:
        return next((v for v in values if v > current + 1e-9), values[-1])
    return next((v for v in reversed(values) if v < current - 1e-9), values[0])


def turn(sampling, knob: str, delta: int = 0) -> None:
    """Change one setting of a Sampling in place: temperature, top_k or top_p by a step, or toggle greedy."""
    if knob == "temperature":
        sampling.temperature = neighbour(TEMPERATURES, sampling.temperature, delta)
    elif knob == "top_k":
        i = TOP_KS.index(sampling.top_k) if sampling.top_k in TOP_KS else len(TOP_KS) - 1
        sampling.top_k = TOP_KS[max(0, min(len(TOP_KS) - 1, i + delta))]
    elif knob == "top_p":
        sampling.top_p = neighbour(TOP_PS, sampling.top_p, delta)
    elif knob == "greedy":
        sampling.greedy = not sampling.greedy
    else:
        raise ValueError(f"unknown knob {knob!r}")


def describe(s) -> str:
    """The sampling settings in the words the knobs use: 'temp 0.8 · top-k 10' or 'greedy'."""
    if s.greedy:
        return "greedy"
    parts = [f"temp {s.temperature:g}"]
    if s.top_k:
        parts.append(f"top-k {s.top_k}")
    if s.top_p < 1:
        parts.append(f"top-p {s.top_p:g}")
    return " · ".join(parts)


class Knobs(Static):
    """`temp 0.7 -/+   top-k 10 k/K   top-p off p/P   greedy off g`, settings in use in bold."""

    def show(self, s, streaming: bool = False) -> None:
        """While streaming the line starts with `● streaming` and leaves out the keys, so it fits 80 columns."""
        t = Text(no_wrap=True, overflow="ellipsis")
        if streaming:
            t.append("● streaming  ", style="bold green")
        for label, value, keys, active in (
            ("temp", f"{s.temperature:g}", "-/+", True),
            ("top-k", str(s.top_k) if s.top_k else "off", "k/K", bool(s.top_k)),
            ("top-p", f"{s.top_p:g}" if s.top_p < 1 else "off", "p/P", s.top_p < 1),
            ("greedy", "on" if s.greedy else "off", "g", s.greedy),
        ):
            t.append(f"{label} ", style="dim")
            t.append(value, style="bold" if active else "")
            t.append("  " if streaming else f" {keys}   ", style="dim")
        self.update(t)
