"""Asked when quitting while a model trains: save a checkpoint first, quit anyway, or go back."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class QuitScreen(ModalScreen[str | None]):
    """Returns "save", "quit" or None (stay)."""

    BINDINGS = [
        Binding("y,s", "answer('save')", "Save & quit"),
        Binding("n", "answer('quit')", "Quit without saving"),
        Binding("escape,c", "answer(None)", "Keep training"),
    ]
    DEFAULT_CSS = """
    QuitScreen { align: center middle; }
    QuitScreen > Vertical { width: 60; max-width: 100%; height: auto; border: thick $warning;
                            background: $surface; padding: 0 1; }
    QuitScreen Horizontal { height: auto; align: center middle; }
    QuitScreen Button { margin: 0 1; min-width: 10; }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(
                "A model is training. Save a checkpoint before quitting?\n"
                "[b]y[/b] save & quit   [b]n[/b] quit without saving   [b]esc[/b] keep training"
            )
            with Horizontal():
                yield Button("Save & quit", id="save", variant="primary", compact=True)
                yield Button("Quit", id="quit", variant="error", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss({"save": "save", "quit": "quit"}.get(event.button.id or ""))

    def action_answer(self, answer: str | None) -> None:
        self.dismiss(answer)
