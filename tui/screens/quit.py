"""Asked when quitting while a model trains or trained weights are unsaved: save first, quit anyway, or stay."""

from __future__ import annotations

from rich.markup import escape
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
        Binding("escape,c", "answer(None)", "Stay"),
    ]
    DEFAULT_CSS = """
    QuitScreen { align: center middle; }
    QuitScreen > Vertical { width: 66; max-width: 100%; height: auto; border: thick $warning;
                            background: $surface; padding: 0 1; }
    QuitScreen Horizontal { height: auto; align: center middle; }
    QuitScreen Button { margin: 0 1; min-width: 10; }
    """

    def __init__(self, situation: str = "A model is training.", stay: str = "keep training") -> None:
        super().__init__()
        self.situation, self.stay = situation, stay

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(
                f"{escape(self.situation)} Save a checkpoint before quitting?\n"
                f"[b]y[/b] save & quit   [b]n[/b] quit without saving   [b]esc[/b] {self.stay}"
            )
            with Horizontal():
                yield Button("Save & quit", id="save", variant="primary", compact=True)
                yield Button("Quit", id="quit", variant="error", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss({"save": "save", "quit": "quit"}.get(event.button.id or ""))

    def action_answer(self, answer: str | None) -> None:
        self.dismiss(answer)
