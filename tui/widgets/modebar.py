"""The bottom chrome of every screen: the numbered screen tabs with a status, above Textual's Footer."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Footer

# (key, mode name, long label, short label); the App's MODES use the same names.
SCREENS = (
    ("1", "config", "Config", "Config"),
    ("2", "training", "Training", "Train"),
    ("3", "inspect", "Inspect", "Inspect"),
    ("4", "attention", "Attention", "Attn"),
    ("5", "generate", "Generate", "Gen"),
    ("6", "vocabulary", "Vocabulary", "Vocab"),
)


class ModeBar(Widget):
    """One line: `1 Config  2 Training ...` with the current screen highlighted, and the app status on the right."""

    DEFAULT_CSS = """
    ModeBar { height: 1; background: $panel; }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "status", lambda _: self.refresh(), init=False)
        self.app.mode_change_signal.subscribe(self, lambda _: self.refresh())

    def render(self) -> Text:
        width = self.content_size.width
        current = getattr(self.app, "current_mode", None)
        status = str(getattr(self.app, "status", ""))
        # The first layout that fits: long labels, short labels, fewer hints, keys only.
        for labels, hints in ((2, "? help ^p cmds"), (3, "? help ^p cmds"), (3, "? help"), (None, "? help")):
            right = f"{hints}  {status}".rstrip()
            tabs = Text(no_wrap=True, overflow="crop")
            for key, mode, long, short in SCREENS:
                label = {2: long, 3: short, None: ""}[labels]
                style = "bold reverse" if mode == current else ""
                tabs.append(f" {key}", style=style or "bold")
                tabs.append(f" {label} " if label else " ", style=style)
            if tabs.cell_len + len(right) + 1 <= width:
                break
        room = max(width - tabs.cell_len - 1, 0)
        tabs.append(" " * max(room - len(right), 1))
        tabs.append(right[:room], style="italic")
        return tabs


class Chrome(Vertical):
    """The mode bar and, unless the screen brings its own, the Footer with the screen's keys."""

    DEFAULT_CSS = """
    Chrome { dock: bottom; height: auto; }
    Chrome > Footer { dock: none; }
    """

    def __init__(self, footer: bool = True) -> None:
        super().__init__()
        self._footer = footer

    def compose(self) -> ComposeResult:
        yield ModeBar()
        if self._footer:
            yield Footer(show_command_palette=False)  # the mode bar shows ^p, leaving room for keys
