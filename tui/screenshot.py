"""Saving what the terminal shows: the current screen as SVG (colours kept) and as plain text."""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path

from rich.console import Console
from textual.binding import Binding

# A modal view (the KV cache, the heads table) stops the app's own keys: it names ctrl+e itself.
SAVE_SCREEN = Binding("ctrl+e", "app.save_screen", "Save the screen (SVG + text)", show=False)


def screen_text(app) -> str:
    """The app's current screen as plain text, as a terminal shows it (no colours)."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system=None,
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    # the way Textual's own export_screenshot renders the screen, composited with any screen below
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


def free_stem(folder: Path, stem: str) -> Path:
    """folder/stem, or stem-2, stem-3, ... : the first for which neither .svg nor .txt exists."""
    n, candidate = 1, folder / stem
    while candidate.with_suffix(".svg").exists() or candidate.with_suffix(".txt").exists():
        n += 1
        candidate = folder / f"{stem}-{n}"
    return candidate


def save_screen(app, name: str, folders=None) -> tuple[Path, Path]:
    """Write the screen to NAME-YYYYmmdd-HHMMSS.svg and .txt in the first writable folder of `folders`
    (default: the working directory, home, the temporary directory); never over an existing file."""
    svg, text = app.export_screenshot(), screen_text(app)
    stem = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    last_error: OSError | None = None
    for folder in folders or (Path.cwd(), Path.home(), Path(tempfile.gettempdir())):
        base = free_stem(Path(folder), stem)
        svg_path, txt_path = base.with_suffix(".svg"), base.with_suffix(".txt")
        written: list[Path] = []
        try:
            for path, content in ((svg_path, svg), (txt_path, text)):
                with open(path, "x", encoding="utf-8") as f:  # "x": never over a file that appeared meanwhile
                    written.append(path)
                    f.write(content)
            return svg_path, txt_path
        except OSError as exc:
            last_error = exc
            for path in written:  # only what this call created
                path.unlink(missing_ok=True)
    raise OSError(f"no folder could take the screenshot ({last_error})")
