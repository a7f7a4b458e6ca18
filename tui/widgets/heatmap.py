"""Heatmap: a fast Line-API grid of coloured cells with token labels and a cell cursor."""

from __future__ import annotations

import numpy as np
from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from ..tokens import visible
from . import palette as pal

__all__ = ["Heatmap", "visible"]

_LABEL = Style(dim=True)
_LABEL_CURSOR = Style(bold=True, reverse=True)
_MASKED = Style(dim=True)


def label_width(labels: list[str], cap: int) -> int:
    """The widest label's cells, or `cap` if one reaches it (a label has at least as many cells as characters,
    so 50,000 labels are measured only when all are short)."""
    if not labels:
        return 0
    if max(map(len, labels)) >= cap:
        return cap
    return min(max(cell_len(s) for s in labels), cap)


class Heatmap(Widget, can_focus=True):
    """A matrix as colour cells (2 columns x 1 row each, or half blocks for 2 rows per line)."""

    DEFAULT_CSS = """
    Heatmap { height: auto; width: auto; max-width: 100%; max-height: 100%; }
    Heatmap:focus { background-tint: $foreground 4%; }
    """
    BINDINGS = [
        Binding("up,k", "move(-1, 0)", "Cell up", show=False),
        Binding("down,j", "move(1, 0)", "Cell down", show=False),
        Binding("left,h", "move(0, -1)", "Cell left", show=False),
        Binding("right,l", "move(0, 1)", "Cell right", show=False),
        Binding("home", "move(0, -100000)", "First column", show=False),
        Binding("end", "move(0, 100000)", "Last column", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
    ]

    class CellSelected(Message):
        """The cursor moved to (row, col), holding value (NaN or -inf where masked)."""

        def __init__(self, heatmap: Heatmap, row: int, col: int, value: float) -> None:
            super().__init__()
            self.heatmap, self.row, self.col, self.value = heatmap, row, col, value

        @property
        def control(self) -> Heatmap:
            return self.heatmap

    def __init__(
        self,
        values=None,
        row_labels=None,
        col_labels=None,
        *,
        kind: str = "auto",
        mask=None,
        compact: bool = False,
        show_status: bool = True,
        show_labels: bool = True,
        show_cursor: bool = True,
        narrow: bool = False,
        label_width: int = 8,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.compact = compact  # half blocks: two data rows per line, one column per data column
        self.show_status = show_status
        self.show_labels = show_labels  # False: a bare thumbnail without axis labels
        self.show_cursor = show_cursor
        self.narrow = narrow  # one column per cell instead of two (wide matrices such as embeddings)
        self.max_label_width = label_width
        self.cell_columns = 2  # columns per cell when not compact or narrow (screens widen it on large terminals)
        self.cell_lines = 1  # lines per data row when not compact (taller with wider cells, so cells stay square)
        self.cursor = (0, 0)  # (row, col) of the selected cell
        self.top = 0  # first data row in view
        self.left = 0  # first data column in view
        self._lines: dict[tuple[int, int, int], Strip] = {}  # (y, width, height) -> rendered line
        self._cells: dict[int, list[Segment]] = {}
        self.set_data(np.zeros((0, 0)) if values is None else values, row_labels, col_labels, kind=kind, mask=mask)

    # -- data -----------------------------------------------------------------------------------
    def set_data(
        self,
        values,
        row_labels=None,
        col_labels=None,
        *,
        kind: str = "auto",
        mask=None,
        vmin: float | None = None,
        vmax: float | None = None,
        escape: bool = True,
        levels: np.ndarray | None = None,
    ) -> None:
        """Show a matrix (1-D becomes 1xN); non-finite values and `mask` cells are drawn as masked.

        Labels are token texts made visible (⏎, ␣) unless `escape` is False (labels already prepared).
        `levels` are the colour levels `palette.quantise` gives for this colour scale, made beforehand
        (in a worker, for a very large matrix).
        """
        prepared = levels is not None and mask is not None and kind == "signed" and vmax is not None
        data = np.asarray(values, dtype=None if prepared else np.float64)
        if data.ndim != 2:  # a vector is one row; a scalar one cell; more dimensions are flattened per row
            data = data.reshape(1, -1) if data.ndim < 2 else data.reshape(data.shape[0], -1)
        self.values = data
        if prepared:  # levels, mask and scale made beforehand: no pass over millions of cells here
            masked, lo, hi = np.asarray(mask, dtype=bool), -float(vmax), float(vmax)
        else:
            masked = ~np.isfinite(data)
            if mask is not None:
                masked |= np.asarray(mask, dtype=bool)
            finite = data[~masked]
            lo = float(finite.min()) if finite.size else 0.0
            hi = float(finite.max()) if finite.size else 0.0
        self.masked = masked
        if kind == "auto":
            kind = "signed" if lo < 0 < hi else "sequential"
        self.kind = kind
        if kind == "signed":
            scale = max(abs(lo), abs(hi)) if vmax is None else float(vmax)
            self.lo, self.hi, self.palette_kind = -scale, scale, "diverging"
        else:
            self.lo = (0.0 if kind == "prob" else lo) if vmin is None else float(vmin)
            self.hi = hi if vmax is None else float(vmax)
            self.palette_kind = "sequential"
        if levels is None or levels.shape != data.shape:
            levels = pal.quantise(data, masked, self.palette_kind, self.lo, self.hi)
        self.levels = levels
        n_rows, n_cols = data.shape
        if row_labels is None:
            self.row_labels = [str(i) for i in range(n_rows)]
        elif not escape and isinstance(row_labels, list):
            self.row_labels = row_labels  # prepared already: no copy of a 50,000-label list
        else:
            show = visible if escape else str
            self.row_labels = [show(str(s)) for s in row_labels]
        show = visible if escape else str
        self.col_labels = [show(str(s)) for s in col_labels] if col_labels is not None else None
        self._layout_labels()
        row, col = self.cursor
        self.set_cursor(min(row, max(n_rows - 1, 0)), min(col, max(n_cols - 1, 0)), force=True)
        self._lines.clear()
        self._cells: dict[int, list[Segment]] = {}  # data row -> its cells' segments (cursor drawn on top)
        extent = (self.label_gutter, len(self.header), data.shape)
        self.refresh(layout=extent != getattr(self, "_extent", None))  # a new layout only when the size may change
        self._extent = extent

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape  # type: ignore[return-value]

    @property
    def cell_width(self) -> int:
        return 1 if self.compact or self.narrow else self.cell_columns

    def widen_cells(self, room: int, height: int = 0) -> None:
        """Use up to `room` columns and `height` lines: cells 2 to 8 columns wide and, when the lines are
        there, up to half as many lines tall (a terminal cell is about twice as tall as wide), so a short
        prompt fills a large terminal as a grid of square cells."""
        columns = max(2, min(8, (room - self.label_gutter) // max(self.shape[1], 1)))
        free = height - len(self.header) - (1 if self.show_status else 0)
        lines = max(1, min(columns // 2, free // max(self.shape[0], 1))) if not self.compact else 1
        if (columns, lines) != (self.cell_columns, self.cell_lines):
            self.cell_columns, self.cell_lines = columns, lines
            self._layout_labels()
            self._lines.clear()
            self._cells = {}
            self.refresh(layout=True)

    @property
    def row_lines(self) -> int:
        """Lines one data row takes (compact maps put two rows on a line: see `view_rows`)."""
        return 1 if self.compact else self.cell_lines

    def _layout_labels(self) -> None:
        """Fix the gutter width and the column header lines for the current labels."""
        if not self.show_labels:
            self.label_gutter, self.header = 0, []
            return
        widest = label_width(self.row_labels, self.max_label_width)
        longest = widest if not self.compact else 2 * widest + 1
        self.label_gutter = min(longest, self.max_label_width) + 1
        cw, labels = self.cell_width, self.col_labels
        if labels is None:
            ruler = self._ruler()
            self.header = [[ruler[c * cw : (c + 1) * cw] for c in range(self.shape[1])]]
        elif max((cell_len(s) for s in labels), default=0) <= cw:
            self.header = [[set_cell_size(s, cw) for s in labels]]
        else:  # too long to sit side by side: stack each label's first characters vertically
            depth = min(max(len(s) for s in labels), 3)
            self.header = [[set_cell_size(s[i] if i < len(s) else "", cw) for s in labels] for i in range(depth)]

    def _ruler(self) -> str:
        """Column indices every few columns, for matrices without column labels."""
        n, cw = self.shape[1], self.cell_width
        step = next(s for s in (1, 2, 4, 5, 8, 10, 16, 20, 32, 50, 64, 100, 1 << 30) if s * cw >= len(str(n)) + 1)
        out = [" "] * (n * cw)
        for c in range(0, n, step):
            for i, ch in enumerate(str(c)):
                if c * cw + i < len(out):
                    out[c * cw + i] = ch
        return "".join(out)

    # -- cursor ---------------------------------------------------------------------------------
    def set_cursor(self, row: int, col: int, force: bool = False) -> None:
        """Move the cursor (clamped), scroll it into view and post CellSelected."""
        n_rows, n_cols = self.shape
        if n_rows == 0 or n_cols == 0:
            return
        row, col = max(0, min(row, n_rows - 1)), max(0, min(col, n_cols - 1))
        if (row, col) == self.cursor and not force:
            return
        self.cursor = (row, col)
        self._scroll_to_cursor()
        self._lines.clear()
        self.refresh()
        self.post_message(self.cell_selected(row, col))

    def cell_selected(self, row: int, col: int) -> CellSelected:
        """The message announcing that the cursor is on shown cell (row, col)."""
        return self.CellSelected(self, row, col, float(self.values[row, col]))

    def action_move(self, d_row: int, d_col: int) -> None:
        """Move the cursor by whole cells."""
        row, col = self.cursor
        self.set_cursor(row + d_row, col + d_col)

    def action_page(self, direction: int) -> None:
        """Move the cursor by one screenful of rows."""
        self.action_move(direction * max(self.view_rows - 1, 1), 0)

    @property
    def view_rows(self) -> int:
        """How many data rows fit (two per line in compact mode)."""
        lines = max(self.size.height - len(self.header) - (1 if self.show_status else 0), 0)
        return lines * 2 if self.compact else lines // self.row_lines

    @property
    def view_cols(self) -> int:
        return max((self.size.width - self.label_gutter) // self.cell_width, 0)

    def _scroll_to_cursor(self) -> None:
        """Shift the view by whole cells so the cursor stays visible."""
        row, col = self.cursor
        rows, cols = max(self.view_rows, 1), max(self.view_cols, 1)
        top = row if row < self.top else row - rows + 1 if row >= self.top + rows else self.top
        top = max(0, min(top, max(self.shape[0] - rows, 0)))
        if self.compact and top % 2:  # a line shows an even row on top of the next one
            top = top + 1 if top + 1 <= row else top - 1
        left = col if col < self.left else col - cols + 1 if col >= self.left + cols else self.left
        self.top, self.left = top, max(0, min(left, max(self.shape[1] - cols, 0)))

    def on_resize(self, event: events.Resize) -> None:
        self._scroll_to_cursor()
        self._lines.clear()

    def on_click(self, event: events.Click) -> None:
        """Select the cell under the mouse."""
        col = self.left + (event.x - self.label_gutter) // self.cell_width
        line = event.y - len(self.header)
        if event.x >= self.label_gutter and line >= 0:
            row = self.top + (line * 2 if self.compact else line // self.row_lines)
            self.set_cursor(row, col)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self.action_move(1, 0)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.action_move(-1, 0)

    # -- rendering ------------------------------------------------------------------------------
    def get_content_width(self, container: Size, viewport: Size) -> int:
        # the status line (value, colour scale, extent) needs about 40 columns
        return max(self.label_gutter + self.shape[1] * self.cell_width, 40 if self.show_status else 1)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        rows = (self.shape[0] + 1) // 2 if self.compact else self.shape[0] * self.row_lines
        return len(self.header) + rows + (1 if self.show_status else 0)

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        key = (y, width, height)
        strip = self._lines.get(key)
        if strip is None:
            strip = self._lines[key] = self._render(y, width, height)
        return strip

    def _render(self, y: int, width: int, height: int) -> Strip:
        n_head = len(self.header)
        if self.show_status and y == height - 1:
            return self._status_line(width)
        if y >= height - (1 if self.show_status else 0):
            return Strip.blank(width)
        cols = range(self.left, min(self.left + max((width - self.label_gutter) // self.cell_width, 0), self.shape[1]))
        if y < n_head:
            return self._header_line(y, width, cols)
        line = y - n_head
        row = self.top + 2 * line if self.compact else self.top + line // self.row_lines
        if row >= self.shape[0]:
            return Strip.blank(width)
        if not self.compact and line % self.row_lines != (self.row_lines - 1) // 2:
            return self._fill_line(row, width, cols)  # a tall row's other lines: colour only
        return self._row_line(row, width, cols)

    @staticmethod
    def _fit(segments: list[Segment], length: int, width: int) -> Strip:
        """A strip of exactly `width` cells from segments whose total length is known (no re-measuring)."""
        if length < width:
            return Strip(segments + [Segment(" " * (width - length))], width)
        return Strip(segments, length) if length == width else Strip(segments, length).crop(0, width)

    def _header_line(self, y: int, width: int, cols: range) -> Strip:
        cells, cur = self.header[y], self.cursor[1]
        segs = [Segment(" " * self.label_gutter)]
        if cur in cols:
            segs += [
                Segment("".join(cells[cols.start : cur]), _LABEL),
                Segment(cells[cur], _LABEL_CURSOR),
                Segment("".join(cells[cur + 1 : cols.stop]), _LABEL),
            ]
        else:
            segs.append(Segment("".join(cells[cols.start : cols.stop]), _LABEL))
        return self._fit(segs, self.label_gutter + len(cols) * self.cell_width, width)

    def _row_label(self, row: int) -> str:
        labels = self.row_labels
        if self.compact:
            below = labels[row + 1] if row + 1 < len(labels) else ""
            both = f"{labels[row]}/{below}"
            # the line's two rows, or its upper row alone when both do not fit (a cut pair would misread)
            text = both if below and cell_len(both) < self.label_gutter else labels[row]
        else:
            text = labels[row] if row < len(labels) else ""
        return set_cell_size(text, self.label_gutter - 1) + " "

    def _row_line(self, row: int, width: int, cols: range) -> Strip:
        cur_row, cur_col = self.cursor
        on_cursor_row = row == cur_row or (self.compact and row + 1 == cur_row)
        cells = self._cells.get(row)
        if cells is None:
            cells = self._cells[row] = self._half_blocks(row) if self.compact else self._row_cells(row)
        segs = [Segment(self._row_label(row), _LABEL_CURSOR if on_cursor_row else _LABEL)] if self.label_gutter else []
        first = len(segs)
        segs += cells[cols.start : cols.stop]
        if on_cursor_row and cur_col in cols and self.show_cursor:
            segs[first + cur_col - cols.start] = self._cursor_cell(row)
        return self._fit(segs, self.label_gutter + len(cols) * self.cell_width, width)

    def _fill_line(self, row: int, width: int, cols: range) -> Strip:
        """A line of a row taller than one line, apart from its middle one: the cells' colours, no text."""
        styles = pal.cell_styles(self.palette_kind, self._color_system)
        cw = self.cell_width
        masked, fill = Segment(" " * cw, _MASKED), " " * cw
        levels = self.levels[row, cols.start : cols.stop].tolist()
        segs = [Segment(" " * self.label_gutter)] if self.label_gutter else []
        segs += [masked if level < 0 else Segment(fill, styles[level]) for level in levels]
        return self._fit(segs, self.label_gutter + len(cols) * cw, width)

    def _row_cells(self, row: int) -> list[Segment]:
        """Every cell of one data row, two columns each, without the cursor."""
        styles = pal.cell_styles(self.palette_kind, self._color_system)
        cw = self.cell_width
        masked, fill = Segment(" " * (cw - 1) + "·", _MASKED), " " * cw
        return [masked if level < 0 else Segment(fill, styles[level]) for level in self.levels[row].tolist()]

    def _half_blocks(self, row: int) -> list[Segment]:
        """One line of '▀' cells, without the cursor: data row `row` on top, `row + 1` below."""
        system = self._color_system
        colors = pal.palette(self.palette_kind, system) + (pal.snap(pal.MASKED_RGB, system),)  # level -1: masked
        top = self.levels[row].tolist()
        if row + 1 >= self.shape[0]:
            return [Segment("▀", pal.half_block_style(colors[t], None)) for t in top]
        bottom = self.levels[row + 1].tolist()
        return [Segment("▀", pal.half_block_style(colors[t], colors[b])) for t, b in zip(top, bottom)]

    def _cursor_cell(self, row: int) -> Segment:
        """The cursor's cell: brackets on its colour, or (half blocks) a magenta half."""
        cur_row, cur_col = self.cursor
        system = self._color_system
        if not self.compact:
            level = self.levels[cur_row, cur_col]
            style = pal.cursor_styles(self.palette_kind, system)[level] if level >= 0 else _LABEL_CURSOR
            cw = self.cell_width
            return Segment("[" + " " * (cw - 2) + "]" if cw >= 2 else "◆", style)
        colors = pal.palette(self.palette_kind, system) + (pal.snap(pal.MASKED_RGB, system),)
        cursor = pal.snap(pal.CURSOR_RGB, system)
        top = cursor if cur_row == row else colors[self.levels[row, cur_col]]
        bottom = None
        if row + 1 < self.shape[0]:
            bottom = cursor if cur_row == row + 1 else colors[self.levels[row + 1, cur_col]]
        return Segment("▀", pal.half_block_style(top, bottom))

    def _status_line(self, width: int) -> Strip:
        """Value under the cursor, the colour scale, and which part of a large matrix is in view."""
        n_rows, n_cols = self.shape
        if not n_rows or not n_cols:
            return Strip([Segment("(empty)", _LABEL)]).adjust_cell_length(width)
        row, col = self.cursor
        value = self.values[row, col]
        shown = "masked" if self.masked[row, col] else f"{value:.4g}"
        where = (self.row_labels[row] if row < len(self.row_labels) else str(row)).strip()
        col_name = self.col_labels[col] if self.col_labels else str(col)
        head = f"[{where},{col_name}]={shown} "
        rows_in_view, cols_in_view = max(self.view_rows, 1), max(self.view_cols, 1)
        extent = []
        if rows_in_view < n_rows:
            extent.append(f"rows {self.top}-{min(self.top + rows_in_view, n_rows) - 1}/{n_rows}")
        if cols_in_view < n_cols:
            extent.append(f"cols {self.left}-{min(self.left + cols_in_view, n_cols) - 1}/{n_cols}")
        tail = " ".join(extent) or f"{n_rows}x{n_cols}"
        segs = [Segment(head, Style(bold=True)), Segment(tail + " ", _LABEL)]
        colors = pal.palette(self.palette_kind, self._color_system)
        low, high = f"{self.lo:.3g}", f"{self.hi:.3g}"
        swatches = range(0, len(colors), 3)
        if cell_len(head) + len(tail) + 1 + len(low) + len(swatches) + len(high) <= width:  # the scale if it fits
            segs.append(Segment(low, _LABEL))
            segs += [Segment(" ", Style(bgcolor=colors[i])) for i in swatches]
            segs.append(Segment(high, _LABEL))
        return Strip(segs).adjust_cell_length(width)

    @property
    def _color_system(self) -> str | None:
        try:
            return self.app.console.color_system
        except Exception:  # not mounted yet (unit tests rendering directly)
            return "truecolor"
