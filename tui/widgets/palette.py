"""Quantised heatmap palettes snapped to the terminal's colour system."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from rich.color import Color, ColorSystem
from rich.style import Style

# Colour stops (position 0..1, RGB). Viridis-like for magnitudes, blue-white-red for signed values.
SEQUENTIAL_STOPS = (
    (0.0, (68, 1, 84)),
    (0.25, (59, 82, 139)),
    (0.5, (33, 145, 140)),
    (0.75, (94, 201, 98)),
    (1.0, (253, 231, 37)),
)
DIVERGING_STOPS = (
    (0.0, (33, 102, 172)),
    (0.25, (103, 169, 207)),
    (0.5, (247, 247, 247)),
    (0.75, (239, 138, 98)),
    (1.0, (178, 24, 43)),
)
# Odd level counts put zero of a signed matrix exactly on the white middle level.
LEVELS = {"sequential": 20, "diverging": 21}
MASKED_RGB = (58, 58, 58)  # a dark grey no palette uses: masked (-inf/NaN) cells
CURSOR_RGB = (255, 0, 255)  # magenta appears in neither palette

_SYSTEMS = {
    "truecolor": ColorSystem.TRUECOLOR,
    "256": ColorSystem.EIGHT_BIT,
    "standard": ColorSystem.STANDARD,
    "windows": ColorSystem.WINDOWS,
}


def _interpolate(stops, t: float) -> tuple[int, int, int]:
    """RGB at position t of a piecewise-linear colour ramp."""
    for (t0, c0), (t1, c1) in zip(stops, stops[1:]):
        if t <= t1:
            f = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
            return tuple(round(a + (b - a) * f) for a, b in zip(c0, c1))  # type: ignore[return-value]
    return stops[-1][1]


def _lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (0-255, shape (..., 3)) to CIELAB, where distances match what the eye sees."""
    c = rgb / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    xyz = c @ np.array([[0.4124, 0.2126, 0.0193], [0.3576, 0.7152, 0.1192], [0.1805, 0.0722, 0.9505]])
    xyz = xyz / np.array([0.9505, 1.0, 1.089])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


_CUBE = (0, 95, 135, 175, 215, 255)
_XTERM = np.array(
    [(_CUBE[i // 36], _CUBE[i // 6 % 6], _CUBE[i % 6]) for i in range(216)] + [(8 + 10 * i,) * 3 for i in range(24)],
    dtype=np.float64,
)  # colours 16..255
_XTERM_LAB = _lab(_XTERM)


def snap(rgb: tuple[int, int, int], color_system: str | None) -> Color:
    """The colour as the terminal will show it (256-colour over SSH, 16 on old consoles)."""
    color = Color.from_rgb(*rgb)
    system = _SYSTEMS.get(color_system or "standard", ColorSystem.STANDARD)
    if system == ColorSystem.EIGHT_BIT:  # nearest by eye (CIELAB), not channel by channel
        index = int(np.argmin(((_XTERM_LAB - _lab(np.array(rgb, dtype=np.float64))) ** 2).sum(-1)))
        return Color.from_ansi(16 + index)
    return color if system == ColorSystem.TRUECOLOR else color.downgrade(system)


@lru_cache(maxsize=16)
def palette(kind: str, color_system: str | None) -> tuple[Color, ...]:
    """The quantised colours of one palette kind ("sequential" or "diverging")."""
    stops = DIVERGING_STOPS if kind == "diverging" else SEQUENTIAL_STOPS
    n = LEVELS[kind]
    return tuple(snap(_interpolate(stops, i / (n - 1)), color_system) for i in range(n))


def contrast(rgb: tuple[int, int, int]) -> Color:
    """Black or white, whichever reads better on top of this colour."""
    luminance = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return Color.from_rgb(0, 0, 0) if luminance > 140 else Color.from_rgb(255, 255, 255)


@lru_cache(maxsize=16)
def cell_styles(kind: str, color_system: str | None) -> tuple[Style, ...]:
    """Background style of each level (two-column cells)."""
    return tuple(Style(bgcolor=c) for c in palette(kind, color_system))


@lru_cache(maxsize=16)
def cursor_styles(kind: str, color_system: str | None) -> tuple[Style, ...]:
    """Style of the cursor cell at each level: the cell colour with a contrasting bracket."""
    styles = []
    for c in palette(kind, color_system):
        rgb = c.get_truecolor()
        styles.append(Style(bgcolor=c, color=contrast((rgb.red, rgb.green, rgb.blue)), bold=True))
    return tuple(styles)


@lru_cache(maxsize=4096)
def half_block_style(top: Color | None, bottom: Color | None) -> Style:
    """Style for '▀': the upper half is the foreground, the lower half the background."""
    return Style(color=top, bgcolor=bottom)


def quantise(values: np.ndarray, masked: np.ndarray, kind: str, lo: float, hi: float) -> np.ndarray:
    """Level index (0..n-1) of every cell, -1 where masked."""
    n = LEVELS[kind]
    span = hi - lo
    safe = np.where(masked, lo, values)
    t = (safe - lo) / span if span > 0 else np.full(values.shape, 0.5)
    level = np.clip(np.rint(t * (n - 1)), 0, n - 1).astype(np.int16)
    level[masked] = -1
    return level
