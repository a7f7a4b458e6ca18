"""The `?` screen: every key of the app and of each screen, read from their bindings."""

from __future__ import annotations

import importlib

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..widgets.modebar import SCREENS

INTRO = (
    "tinylm builds a small GPT-2, trains it on a text, and shows the real numbers of every step. "
    "Keys 1-6 switch screens. On screens with text fields, tab enters the fields and esc leaves them, so that "
    "digits and letters work as keys again. ctrl+p opens the command palette with every action."
)


def screen_bindings(cls: type) -> list[Binding]:
    """The described bindings a Screen class declares (its own and its bases', not Textual's)."""
    found: dict[str, Binding] = {}
    for base in reversed(cls.__mro__):
        if base.__module__.startswith("textual.") or "BINDINGS" not in vars(base):
            continue
        for b in Binding.make_bindings(vars(base)["BINDINGS"]):
            if b.description:
                found[b.key] = b
    return list(found.values())


def mode_screen_class(mode: str) -> type | None:
    """The class of a mode's screen, or None while it cannot be imported."""
    from ..app import SCREEN_CLASSES

    module, name = SCREEN_CLASSES[mode]
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


class HelpScreen(ModalScreen[None]):
    """A scrollable list of every key, grouped by screen."""

    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close help")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 100; height: 90%; border: round $accent;
                                  background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text("Keys", style="bold"), id="help-title")
            yield Static(INTRO, id="help-intro")
            yield Static(self.key_table(), id="help-keys")

    def key_table(self) -> Table:
        table = Table(show_header=False, box=None, padding=(0, 1), expand=True)
        table.add_column("key", style="bold", no_wrap=True)
        table.add_column("what")
        table.add_row(Text("Everywhere", style="bold underline"), "")
        for key, _, label, _ in SCREENS:
            table.add_row(key, f"{label} screen")
        for b in screen_bindings(type(self.app)):
            if not b.key.isdigit():
                table.add_row(self.app.get_key_display(b), b.description)
        for key, mode, label, _ in SCREENS:
            cls = mode_screen_class(mode)
            bindings = screen_bindings(cls) if cls is not None else []
            if bindings:
                table.add_row("", "")
                table.add_row(Text(f"{key} {label}", style="bold underline"), "")
                for b in bindings:
                    table.add_row(self.app.get_key_display(b), b.description)
        return table

    def action_dismiss(self) -> None:
        self.dismiss(None)
