"""BlockHeatmap: a heatmap of a matrix larger than the screen, one cell per block, that zooms to real values."""

from __future__ import annotations

import numpy as np
from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.strip import Strip

from ..tokens import visible
from . import palette as pal
from .blocks import Reduced, block_size, reduce_blocks
from .heatmap import Heatmap

_RULE = Style(dim=True, italic=True)
ZOOM_SCROLL = 256  # real rows a zoom shows along an axis that scrolls (the window moves with the cursor)


def color_scale(reduced: Reduced, kind: str, vmin: float | None, vmax: float | None) -> dict:
    """The colour scale of the whole matrix, from its reduction (which holds its largest |x|)."""
    finite = reduced.values[~reduced.masked]
    if kind == "auto":
        kind = "signed" if finite.size and finite.min() < 0 < finite.max() else "sequential"
    if kind == "signed" and vmax is None and finite.size:
        vmax = float(np.abs(finite).max())
    if kind in ("sequential", "prob") and vmax is None and finite.size:
        vmax = float(finite.max())
    return dict(kind=kind, vmin=vmin, vmax=vmax)


def color_levels(reduced: Reduced, scale: dict) -> np.ndarray:
    """The colour level of every shown cell, as Heatmap.set_data would compute it for this scale."""
    values, masked = reduced.values.astype(np.float64), reduced.masked
    finite = values[~masked]
    if scale["kind"] == "signed":
        hi = scale["vmax"] if scale["vmax"] is not None else 0.0
        return pal.quantise(values, masked, "diverging", -hi, hi)
    lo = float(finite.min()) if finite.size else 0.0
    lo = (0.0 if scale["kind"] == "prob" else lo) if scale["vmin"] is None else float(scale["vmin"])
    hi = scale["vmax"] if scale["vmax"] is not None else (float(finite.max()) if finite.size else 0.0)
    return pal.quantise(values, masked, "sequential", lo, hi)


class Prepared:
    """A very large matrix's reduction, colour scale and levels, made off the UI thread (see `prepare`)."""

    def __init__(self, reduced: Reduced, scale: dict, levels: np.ndarray) -> None:
        self.reduced, self.scale, self.levels = reduced, scale, levels


def prepare(values, *, kind="auto", mask=None, vmin=None, vmax=None, max_rows=None, max_cols=None) -> Prepared:
    """Everything `BlockHeatmap.show_matrix` computes from the numbers, for a worker thread to do."""
    data = np.asarray(values)
    rows, cols = data.shape
    reduced = reduce_blocks(data, block_size(rows, max_rows), block_size(cols, max_cols), mask)
    scale = color_scale(reduced, kind, vmin, vmax)
    return Prepared(reduced, scale, color_levels(reduced, scale))


class BlockHeatmap(Heatmap):
    """Shows a whole matrix: blocks reduced by their largest |x| (the rule is on the status line); `z` zooms
    into the cursor's block to show its real values (arrows past its edge go to the next block), `z` again
    goes back. CellSelected always names a real cell: in the overview, the cell whose value the block shows."""

    BINDINGS = [Binding("z", "zoom", "Zoom block")]

    def __init__(self, *args, **kwargs) -> None:
        self.reduced: Reduced | None = None
        self.full = np.zeros((0, 0), dtype=np.float32)
        self.full_mask: np.ndarray | None = None
        self.zoomed: tuple[int, int] | None = None  # real (row, col) of the zoomed window's first cell
        self.origin = (0, 0)  # real (row, col) of the shown cell (0, 0)
        self.room: tuple[int | None, int | None] = (None, None)  # most shown cells (rows, cols); None: scroll
        self.real_row_labels: list[str] = []
        self.real_col_labels: list[str] | None = None
        self._scale: dict = {}
        self._levels: np.ndarray | None = None
        super().__init__(*args, **kwargs)

    # -- data ------------------------------------------------------------------------------------
    def show_matrix(
        self,
        values,
        row_labels=None,
        col_labels=None,
        *,
        kind: str = "auto",
        mask=None,
        vmin: float | None = None,
        vmax: float | None = None,
        max_rows: int | None = None,
        max_cols: int | None = None,
        prepared: Prepared | None = None,
        escape: bool = True,
    ) -> None:
        """Show `values` whole: at most max_rows x max_cols cells (None: that axis scrolls instead).

        `prepared` is what `prepare` made beforehand (in a worker, for very large matrices)."""
        full = np.asarray(values)
        if full.ndim != 2:
            full = full.reshape(1, -1) if full.ndim < 2 else full.reshape(full.shape[0], -1)
        R, C = full.shape
        if prepared is None or prepared.reduced.shape != (R, C):
            prepared = prepare(full, kind=kind, mask=mask, vmin=vmin, vmax=vmax, max_rows=max_rows, max_cols=max_cols)
        reduced = prepared.reduced
        show = visible if escape else str
        keep_zoom = self.zoomed is not None and self.full.shape == full.shape and not reduced.identity
        at = self.real_cursor if keep_zoom else None
        self.full, self.full_mask, self.reduced = full, None if mask is None else np.asarray(mask, bool), reduced
        self.room = (max_rows, max_cols)
        if not escape and isinstance(row_labels, list):
            self.real_row_labels = row_labels  # prepared already: no copy of a 50,000-label list
        else:
            self.real_row_labels = [show(str(s)) for s in (row_labels if row_labels is not None else range(R))]
        self.real_col_labels = [show(str(s)) for s in col_labels] if col_labels is not None else None
        self._scale, self._levels = prepared.scale, prepared.levels
        if self.is_mounted:
            self.refresh_bindings()
        if at is not None:
            self._show_window(*at)
        else:
            self._show_overview()

    def _show_overview(self, at: tuple[int, int] | None = None) -> None:
        red = self.reduced
        self.zoomed, self.origin = None, (0, 0)
        rows = self.real_row_labels if red.rows == 1 else [str(r * red.rows) for r in range(red.values.shape[0])]
        cols = self.real_col_labels if red.cols == 1 else None
        if at is not None:
            self.cursor = at
        self.set_data(red.values, rows, cols, mask=red.masked, escape=False, levels=self._levels, **self._scale)

    def window(self, row: int, col: int) -> tuple[range, range]:
        """The real rows and columns a zoom shows around real cell (row, col): as many as the room holds,
        centred on the cell, or the current window shifted just enough to hold it."""
        R, C = self.real_shape

        def span(at: int, n: int, room: int | None, current: int | None) -> range:
            size = min(ZOOM_SCROLL if room is None else max(room, 1), n)  # a scrolling axis: a stretch of it
            if current is not None and current <= at < current + size:
                start = current
            elif current is not None and at >= current + size:
                start = at - size + 1
            elif current is not None and at < current:
                start = at
            else:
                start = at - size // 2
            start = max(0, min(start, n - size))
            return range(start, start + size)

        now = self.zoomed or (None, None)
        return span(row, R, self.room[0], now[0]), span(col, C, self.room[1], now[1])

    def _show_window(self, row: int, col: int) -> None:
        """Zoom: real values around real cell (row, col), with the cursor on it."""
        rows, cols = self.window(row, col)
        self.zoomed = self.origin = (rows.start, cols.start)
        part = self.full[rows.start : rows.stop, cols.start : cols.stop]
        mask = None if self.full_mask is None else self.full_mask[rows.start : rows.stop, cols.start : cols.stop]
        row_labels = self.real_row_labels[rows.start : rows.stop]
        col_labels = None if self.real_col_labels is None else self.real_col_labels[cols.start : cols.stop]
        self.cursor = (row - rows.start, col - cols.start)
        self.set_data(part, row_labels, col_labels, mask=mask, escape=False, **self._scale)

    # -- the real cell under the cursor ----------------------------------------------------------
    @property
    def real_shape(self) -> tuple[int, int]:
        return self.full.shape  # type: ignore[return-value]

    def real_cell(self, row: int, col: int) -> tuple[int, int]:
        """The real (row, col) a shown cell stands for."""
        if self.zoomed is not None:
            return self.origin[0] + row, self.origin[1] + col
        red = self.reduced
        return int(red.where_row[row, col]), int(red.where_col[row, col])

    @property
    def real_cursor(self) -> tuple[int, int]:
        return self.real_cell(*self.cursor)

    def real_row_label(self, row: int) -> str:
        return self.real_row_labels[row] if row < len(self.real_row_labels) else str(row)

    def real_col_label(self, col: int) -> str:
        return self.real_col_labels[col] if self.real_col_labels is not None else str(col)

    def cell_selected(self, row: int, col: int) -> Heatmap.CellSelected:
        if self.reduced is None:
            return super().cell_selected(row, col)
        r, c = self.real_cell(row, col)
        return self.CellSelected(self, r, c, float(self.full[r, c]))

    def set_real_cursor(self, row: int, col: int) -> None:
        """Put the cursor on the shown cell holding real cell (row, col)."""
        if self.reduced is None:
            return
        if self.zoomed is not None:
            self._show_window(row, col)
        else:
            self.set_cursor(*self.reduced.block_of(row, col), force=True)

    # -- keys ------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """The zoom key is offered only where blocks are shown."""
        if action == "zoom":
            return self.reduced is not None and not self.reduced.identity
        return True

    def action_zoom(self) -> None:
        """Zoom into the cursor's block (its real values), or back out to the whole matrix."""
        red = self.reduced
        if red is None or red.identity:
            self.app.bell()
            return
        if self.zoomed is None:
            self._show_window(*self.real_cursor)
        else:
            self._show_overview(at=self.reduced.block_of(*self.real_cursor))

    def action_move(self, d_row: int, d_col: int) -> None:
        """Move by one cell; in a zoomed block, past its edge into the neighbouring block."""
        if self.zoomed is None or self.reduced is None:
            return super().action_move(d_row, d_col)
        r, c = self.real_cursor
        R, C = self.real_shape
        r, c = max(0, min(r + d_row, R - 1)), max(0, min(c + d_col, C - 1))
        self.set_real_cursor(r, c)

    # -- drawing ---------------------------------------------------------------------------------
    def _ruler(self) -> str:
        """Real column indices every few shown columns (a block starts at its first real column)."""
        if self.reduced is None or (self.reduced.identity and self.zoomed is None):
            return super()._ruler()
        step_cols = self.reduced.cols if self.zoomed is None else 1
        first = self.origin[1]
        n, cw = self.shape[1], self.cell_width
        out = [" "] * (n * cw)
        c = 0
        while c < n:
            text = str(first + c * step_cols)
            for i, ch in enumerate(text):
                if c * cw + i < len(out):
                    out[c * cw + i] = ch
            c += -(-(len(text) + 1) // cw)
        return "".join(out)

    def rule_text(self) -> str:
        """What a shown cell is, in words, for the screen around the map."""
        red = self.reduced
        if red is None or red.identity:
            return ""
        if self.zoomed is not None:
            (r0, c0), (rows, cols) = self.origin, self.shape
            return f"zoomed: real values of rows {r0}-{r0 + rows - 1}, cols {c0}-{c0 + cols - 1} · z: back"
        return f"{red.rule()} · z: zoom"

    def _status_line(self, width: int) -> Strip:
        red = self.reduced
        if red is None or red.identity or not self.shape[0] or not self.shape[1]:
            return super()._status_line(width)
        r, c = self.real_cursor
        value = "masked" if self.masked[self.cursor] else f"{self.full[r, c]:.4g}"
        head = f"[{self.real_row_label(r).strip()},{self.real_col_label(c)}]={value} "
        if self.zoomed is None:
            size = f"{red.rows}x{red.cols}"
            rules = (f"cell=max|x| of {size} · z zoom", f"max|x| of {size} · z zoom", f"max|x| of {size}")
        else:
            rules = ("real values · z back", "z back")
        room = width - cell_len(head)  # the longest rule that fits whole: a cut one reads 'z zo'
        rule = next((r for r in rules if cell_len(r) <= room), "")
        segs = [Segment(head, Style(bold=True)), Segment(rule, _RULE)]
        return Strip(segs).adjust_cell_length(width)
