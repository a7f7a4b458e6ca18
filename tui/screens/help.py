"""The `?` screen: every key of the app and of each screen, read from their bindings."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from .registry import key_range

INTRO = (
    "tinylm builds a small GPT-2, trains it on a text, and shows the real numbers of every step. "
    "Keys {keys} switch screens. On screens with text fields, tab enters the fields and esc leaves them, so "
    "that digits and letters work as keys again. ctrl+p opens the command palette with every action."
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


def help_bindings(cls: type) -> list[Binding]:
    """A screen's keys and then those of the widgets it names in KEY_WIDGETS (a grid's cursor and zoom),
    where the screen does not describe that key itself."""
    found = {b.key: b for b in screen_bindings(cls)}
    described = {key for b in found.values() for key in b.key.split(",")}  # "up,down,left,right": four keys
    for widget in getattr(cls, "KEY_WIDGETS", ()):
        for b in screen_bindings(widget):
            if not described.intersection(b.key.split(",")):  # the screen's line covers it: listed once
                found.setdefault(b.key, b)
    return list(found.values())


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
            yield Static(INTRO.format(keys=key_range(self.app.screen_entries)), id="help-intro")
            yield Static(self.key_table(), id="help-keys")

    def key_table(self) -> Table:
        table = Table(show_header=False, box=None, padding=(0, 1), expand=True)
        table.add_column("key", style="bold", no_wrap=True)
        table.add_column("what", ratio=1)  # the keys keep their width; the text takes the rest
        table.add_row(Text("Everywhere", style="bold underline"), "")
        entries = self.app.screen_entries
        for entry in entries:
            table.add_row(f"{entry.key} {entry.label}", entry.description)
        for b in screen_bindings(type(self.app)):
            table.add_row(self.app.get_key_display(b), b.description)
        for entry in entries:
            bindings = help_bindings(entry.screen_class())
            if bindings:
                table.add_row("", "")
                table.add_row(Text(f"{entry.key} {entry.label}", style="bold underline"), "")
                for b in bindings:
                    table.add_row(self.app.get_key_display(b), b.description)
        return table

    def action_dismiss(self) -> None:
        self.dismiss(None)
