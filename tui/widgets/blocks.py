"""Block reduction: a matrix too large for the screen drawn one cell per block, each showing its largest |x|."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK_CELLS = 1 << 18  # cells reduced at a time: bounded memory, and the GIL is free between chunks


@dataclass
class Reduced:
    """A matrix cut into blocks of `rows` x `cols` real cells; each shown cell is one real cell of its block.

    `values[i, j]` is the value of largest magnitude in block (i, j), sign kept, found at real cell
    (`where_row[i, j]`, `where_col[i, j]`); the first such cell in row-major order on ties. Masked cells
    (mask True or not finite) never win unless the whole block is masked, then the block is masked.
    """

    values: np.ndarray  # (n_block_rows, n_block_cols) float32
    masked: np.ndarray  # (n_block_rows, n_block_cols) bool
    where_row: np.ndarray  # (n_block_rows, n_block_cols) int64
    where_col: np.ndarray
    rows: int  # real rows per block
    cols: int  # real columns per block
    shape: tuple[int, int]  # the real matrix's shape

    @property
    def identity(self) -> bool:
        return self.rows == 1 and self.cols == 1

    def rule(self) -> str:
        """The rule in words, for the screen."""
        if self.identity:
            return "each cell = one value"
        return f"each cell = the largest |x| (sign kept) of a {self.rows}x{self.cols} block"

    def block_of(self, row: int, col: int) -> tuple[int, int]:
        """The block holding real cell (row, col)."""
        return row // self.rows, col // self.cols

    def extent(self, block_row: int, block_col: int) -> tuple[range, range]:
        """The real rows and columns of one block."""
        r0, c0 = block_row * self.rows, block_col * self.cols
        return range(r0, min(r0 + self.rows, self.shape[0])), range(c0, min(c0 + self.cols, self.shape[1]))


def block_size(n: int, room: int | None) -> int:
    """Real cells per block so that `n` cells fit in `room` shown cells (1: no reduction)."""
    if room is None or room <= 0 or n <= room:
        return 1
    return -(-n // room)


def reduce_blocks(values, rows: int, cols: int, mask=None) -> Reduced:
    """Cut `values` (R, C) into rows x cols blocks and keep each block's value of largest magnitude."""
    data = np.asarray(values)
    if data.ndim != 2:
        data = data.reshape(1, -1) if data.ndim < 2 else data.reshape(data.shape[0], -1)
    R, C = data.shape
    rows, cols = max(int(rows), 1), max(int(cols), 1)
    nr, nc = -(-R // rows), -(-C // cols)
    if rows == 1 and cols == 1:
        masked = ~np.isfinite(data) if mask is None else ~np.isfinite(data) | np.asarray(mask, dtype=bool)
        where_row, where_col = np.indices((R, C))
        return Reduced(data.astype(np.float32), masked, where_row, where_col, 1, 1, (R, C))
    masks = None if mask is None else np.asarray(mask, dtype=bool)
    best = np.empty((nr, nc), dtype=np.int64)
    step = rows * max(1, CHUNK_CELLS // (rows * nc * cols))  # whole block rows, a few MB at a time
    for start in range(0, R, step):
        part = data[start : start + step]
        magnitude = np.abs(part, dtype=np.float32)
        invalid = ~np.isfinite(magnitude)
        if masks is not None:
            invalid |= masks[start : start + step]
        magnitude[invalid] = -1.0  # below every real magnitude
        n = -(-len(part) // rows)
        padded = np.full((n * rows, nc * cols), -2.0, dtype=np.float32)  # padding loses even to masked cells
        padded[: len(part), :C] = magnitude
        # (n, rows, nc, cols) -> (n, nc, rows * cols): each block's cells in row-major order
        blocks = padded.reshape(n, rows, nc, cols).transpose(0, 2, 1, 3).reshape(n, nc, rows * cols)
        best[start // rows : start // rows + n] = blocks.argmax(axis=2)
    where_row = np.arange(nr)[:, None] * rows + best // cols
    where_col = np.arange(nc)[None, :] * cols + best % cols
    shown = data[where_row, where_col].astype(np.float32)
    masked = ~np.isfinite(shown)
    if masks is not None:
        masked |= masks[where_row, where_col]
    return Reduced(shown, masked, where_row, where_col, rows, cols, (R, C))
