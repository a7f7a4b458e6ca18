"""Scatter: text labels placed at 2-D points, as in a PCA map of token embeddings."""

from __future__ import annotations

import numpy as np
from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

_AXIS = Style(dim=True)
_LABEL = Style()
_HIGHLIGHT = Style(bold=True, reverse=True)


class Scatter(Widget):
    """Labels at (x, y) positions scaled to the widget; crowded labels are skipped (and counted)."""

    DEFAULT_CSS = """
    Scatter { height: 1fr; width: 1fr; }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.points = np.zeros((0, 2))
        self._lo, self._hi = np.zeros(2), np.zeros(2)
        self._extent = (0.0, 0.0, 0.0, 0.0)
        self.labels: list[str] = []
        self.highlight: int | None = None
        self.hidden = 0  # labels left out because their place was taken
        self.placed: dict[int, tuple[int, int]] = {}  # point -> (x, y) cell of its label's first character
        self._grid: list[list[tuple[str, Style]]] | None = None
        self._base: tuple | None = None  # (width, height, grid, placed) of the labels without the highlight

    def set_points(self, points: np.ndarray, labels: list[str], highlight: int | None = None) -> None:
        """Show these points (N, 2) with their labels; `highlight` is drawn last, reversed, always."""
        self.points, self.labels, self.highlight = np.asarray(points, dtype=np.float64), list(labels), highlight
        self._lo, self._hi = (self.points.min(0), self.points.max(0)) if len(self.points) else (np.zeros(2),) * 2
        self._extent = (*self._lo.tolist(), *self._hi.tolist())
        self._grid = self._base = None
        self.refresh()

    def set_highlight(self, index: int | None) -> None:
        if index != self.highlight:
            self.highlight = index
            self._grid = None
            self.refresh()

    def on_resize(self) -> None:
        self._grid = self._base = None

    def cell_of(self, x: float, y: float, width: int, height: int, label_width: int = 1) -> tuple[int, int]:
        """The character cell of a data point (y grows upwards, as on paper)."""
        x0, y0, x1, y1 = self._extent  # measured once per set of points
        fx = (x - x0) / (x1 - x0 if x1 > x0 else 1.0)
        fy = (y1 - y) / (y1 - y0 if y1 > y0 else 1.0)
        return int(round(fx * max(width - label_width, 0))), int(round(fy * max(height - 1, 0)))

    def _layout(self, width: int, height: int) -> list[list[tuple[str, Style]]]:
        """Every label that fits, with the highlighted one drawn over them so it is never crowded out (the
        others are placed once per set of points and size: a cursor move only redraws the highlight)."""
        if self._base is None or self._base[:2] != (width, height):
            grid, placed = self._place(width, height)
            self._base = (width, height, grid, placed)
        grid, self.placed = [list(row) for row in self._base[2]], dict(self._base[3])
        i = self.highlight
        if i is not None and 0 <= i < len(self.points) and width >= 2 and height >= 1:
            text = self.labels[i][:4] if i < len(self.labels) else str(i)
            w = max(cell_len(text), 1)
            col, row = self.cell_of(*self.points[i].tolist(), width, height, w)
            col, row = min(max(col, 0), max(width - w, 0)), min(max(row, 0), height - 1)
            for other, (c, r) in list(self.placed.items()):  # labels the highlight covers are not shown
                if (
                    r == row
                    and other != i
                    and c < col + w + 1
                    and col - 1 < c + max(cell_len(self.labels[other][:4]), 1)
                ):
                    del self.placed[other]
            for k, ch in enumerate(text[: width - col]):
                grid[row][col + k] = (ch, _HIGHLIGHT)
            self.placed[i] = (col, row)
        self.hidden = len(self.points) - len(self.placed)
        return grid

    def _place(self, width: int, height: int) -> tuple[list, dict]:
        """The axes and every label that fits without touching another, lowest index first."""
        grid = [[(" ", _AXIS) for _ in range(width)] for _ in range(height)]
        placed: dict[int, tuple[int, int]] = {}
        if len(self.points) == 0 or width < 2 or height < 1:
            return grid, placed
        x0, y0 = self.cell_of(0.0, 0.0, width, height)
        if 0 <= y0 < height:  # the axes through the origin, faintly
            grid[y0] = [("─", _AXIS)] * width
        if 0 <= x0 < width:
            for row in grid:
                row[x0] = ("┼" if row[x0][0] == "─" else "│", _AXIS)
        taken = [[False] * width for _ in range(height)]
        order = self._candidates(width, height)
        xs, ys = self.points[:, 0].tolist(), self.points[:, 1].tolist()
        for i in order:
            text = self.labels[i][:4] if i < len(self.labels) else str(i)
            w = max(cell_len(text), 1)
            col, row = self.cell_of(xs[i], ys[i], width, height, w)
            col = min(max(col, 0), max(width - w, 0))
            span = range(max(col - 1, 0), min(col + w + 1, width))  # keep one blank cell between labels
            if not 0 <= row < height or any(taken[row][c] for c in span):
                continue
            for k, ch in enumerate(text[: width - col]):
                grid[row][col + k] = (ch, _LABEL)
                taken[row][col + k] = True
            placed[i] = (col, row)
        return grid, placed

    def _candidates(self, width: int, height: int) -> list[int]:
        """The first point (lowest index) of every character cell: two points in one cell could not both show
        a label, so 50,000 points come down to at most one per cell before labels are placed."""
        lo, hi = self._lo, self._hi
        span = np.where(hi - lo > 0, hi - lo, 1.0)
        cols = np.rint((self.points[:, 0] - lo[0]) / span[0] * max(width - 1, 0)).astype(np.int64)
        rows = np.rint((hi[1] - self.points[:, 1]) / span[1] * max(height - 1, 0)).astype(np.int64)
        _, first = np.unique(rows * max(width, 1) + cols, return_index=True)
        first.sort()
        return first.tolist()

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        if self._grid is None or len(self._grid) != height or (height and len(self._grid[0]) != width):
            self._grid = self._layout(width, height)
        if y >= len(self._grid):
            return Strip.blank(width)
        return Strip([Segment(ch, style) for ch, style in self._grid[y]]).simplify().adjust_cell_length(width)
