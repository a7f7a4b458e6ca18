"""A braille line chart: each character cell holds 2x4 dots, so a 70x12 chart has 140x48 points."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.text import Text
from textual.widget import Widget

# Bit of the braille dot at (column 0-1, row 0-3) inside one cell (Unicode braille patterns U+2800..U+28FF).
_DOT_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
_LABEL_WIDTH = 7  # room for "10.123 " on the y axis


@dataclass
class Series:
    """One line of the chart: x and y values (same length) and a Rich style."""

    name: str
    xs: Sequence[float] = field(default_factory=list)
    ys: Sequence[float] = field(default_factory=list)
    style: str = "cyan"
    in_legend: bool = True  # False: drawn, but named elsewhere (the Training screen's overlay legend)
    short: str | None = None  # the name in the narrowest legend ("@600" for "step 600"), else name


def _resample(xs: Sequence[float], ys: Sequence[float], n: int) -> tuple[list[float], list[float]]:
    """Average the points into at most n buckets, so drawing cost does not grow with history length."""
    pairs = [(x, y) for x, y in zip(xs, ys) if y is not None and math.isfinite(y)]
    if len(pairs) <= n:
        return [p[0] for p in pairs], [p[1] for p in pairs]
    out_x, out_y = [], []
    for i in range(n):
        chunk = pairs[i * len(pairs) // n : (i + 1) * len(pairs) // n]
        out_x.append(sum(p[0] for p in chunk) / len(chunk))
        out_y.append(sum(p[1] for p in chunk) / len(chunk))
    return out_x, out_y


def _fmt(value: float) -> str:
    """A y-axis label that fits in six characters."""
    if abs(value) >= 1e4:
        return f"{value:.0e}".replace("e+0", "e").replace("e+", "e")  # 1e5, 3e12: never wider than six
    if abs(value) >= 1000:
        return f"{value:.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}" if abs(value) >= 10 else f"{value:.3f}"


def render_braille(
    series: Sequence[Series], width: int, height: int, x_range: tuple[float, float] | None = None
) -> list[Text]:
    """Draw the series into `height` lines of `width` cells (y labels included); returns Rich Text lines."""
    plot_w = max(width - _LABEL_WIDTH, 1)
    plot_h = max(height - 1, 1)  # the last line holds the x-axis labels
    px_w, px_h = plot_w * 2, plot_h * 4
    sampled = [_resample(s.xs, s.ys, px_w) for s in series]
    all_x = [x for s in series for x, y in zip(s.xs, s.ys) if y is not None and math.isfinite(y)]
    # The axis spans the raw values (not the bucket averages), so its labels are the data's true range.
    all_y = [y for s in series for y in s.ys if y is not None and math.isfinite(y)]
    if not all_y:
        empty = [Text(" " * width) for _ in range(plot_h)]
        return empty + [Text("no data yet".center(width)[:width], style="dim")]
    x0, x1 = x_range if x_range is not None else (min(all_x), max(all_x))
    y0, y1 = min(all_y), max(all_y)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5
    if x1 - x0 < 1e-9:
        x1 = x0 + 1
    bits = [[0] * plot_w for _ in range(plot_h)]
    owner: list[list[int]] = [[-1] * plot_w for _ in range(plot_h)]

    def plot(px: int, py: int, k: int) -> None:
        if 0 <= px < px_w and 0 <= py < px_h:
            row, col = py // 4, px // 2
            bits[row][col] |= _DOT_BITS[py % 4][px % 2]
            owner[row][col] = k  # later series win a shared cell, so validation draws over training

    for k, (xs, ys) in enumerate(sampled):
        pts = [
            (round((x - x0) / (x1 - x0) * (px_w - 1)), round((y1 - y) / (y1 - y0) * (px_h - 1))) for x, y in zip(xs, ys)
        ]
        if len(pts) == 1:
            plot(*pts[0], k)
        for (ax, ay), (bx, by) in zip(pts, pts[1:]):
            steps = max(abs(bx - ax), abs(by - ay), 1)
            for i in range(steps + 1):
                plot(ax + (bx - ax) * i // steps, ay + (by - ay) * i // steps, k)

    lines: list[Text] = []
    label_rows = {0: y1, plot_h - 1: y0, (plot_h - 1) // 2: (y0 + y1) / 2} if plot_h > 2 else {0: y1, plot_h - 1: y0}
    for row in range(plot_h):
        line = Text(no_wrap=True, overflow="crop")
        label = _fmt(label_rows[row]) if row in label_rows else ""
        line.append(f"{label:>{_LABEL_WIDTH - 1}}", style="dim")
        line.append("┤" if row in label_rows else "│", style="dim")
        for col in range(plot_w):
            b = bits[row][col]
            k = owner[row][col]
            line.append(chr(0x2800 + b) if b else " ", style=series[k].style if k >= 0 else "")
        lines.append(line)
    axis = Text(no_wrap=True, overflow="crop")
    left, right = f"{x0:.0f}", f"{x1:.0f}"
    axis.append(" " * _LABEL_WIDTH + left + " " * max(plot_w - len(left) - len(right), 1) + right, style="dim")
    lines.append(axis)
    return lines


class BrailleChart(Widget):
    """A line chart of one or more series, drawn in braille dots, with a legend line on top."""

    DEFAULT_CSS = """
    BrailleChart { height: 1fr; min-height: 4; }
    """

    def __init__(
        self, *, title: str = "", name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.title = title
        self.series: list[Series] = []
        self.x_range: tuple[float, float] | None = None

    def set_series(self, series: Sequence[Series], x_range: tuple[float, float] | None = None) -> None:
        """Replace the data and redraw."""
        self.series = list(series)
        self.x_range = x_range
        self.refresh()

    def legend(self, width: int | None = None) -> Text:
        """Title and, per series, its colour and latest value; made shorter until it fits `width` (two decimals
        and narrower gaps, then without the title, then the series' short names); the shortest when none fits,
        for render to cut."""
        shown = [(s, next((y for y in reversed(s.ys) if y is not None), None)) for s in self.series if s.in_legend]
        forms = (
            (True, 3, "  ", False),
            (True, 2, " ", False),
            (False, 3, "  ", False),
            (False, 2, " ", False),
            (False, 2, " ", True),
        )  # (title, decimals, gap, short names), longest first
        for title, digits, gap, short in forms:
            text = Text(no_wrap=True, overflow="ellipsis")
            if self.title and title:
                text.append(self.title + gap, style="bold")
            for s, last in shown:
                text.append("━ ", style=s.style)
                name = s.short if short and s.short else s.name
                text.append(f"{name} {last:.{digits}f}" if last is not None else f"{name} –")
                text.append(gap)
            text.rstrip()
            if width is None or text.cell_len <= width:
                break
        return text

    def render(self) -> Text:
        width, height = self.content_size.width, self.content_size.height
        if width < 10 or height < 3:
            return self.legend()
        legend = self.legend(width)
        legend.truncate(width, overflow="ellipsis")  # a long legend is cut, never wraps and pushes the axis off
        lines = [legend] + render_braille(self.series, width, height - 1, self.x_range)
        return Text("\n").join(lines)
