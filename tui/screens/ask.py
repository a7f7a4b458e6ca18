"""A question with a few one-key answers, asked before anything saved or trained could be lost."""

from __future__ import annotations

from rich.markup import escape
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class Ask(ModalScreen[str | None]):
    """Shows `question`; each choice is (key, label, answer). Returns the chosen answer, or None on escape."""

    DEFAULT_CSS = """
    Ask { align: center middle; }
    Ask > Vertical { width: 64; max-width: 100%; height: auto; border: thick $warning;
                     background: $surface; padding: 0 1; }
    Ask Horizontal { height: auto; align: center middle; }
    Ask Button { margin: 0 1; min-width: 10; }
    """

    def __init__(self, question: str, choices: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.question = question
        self.choices = choices

    def compose(self) -> ComposeResult:
        keys = "   ".join(f"[b]{key}[/b] {escape(label)}" for key, label, _ in self.choices)
        with Vertical():
            yield Static(f"{escape(self.question)}\n{keys}   [b]esc[/b] cancel")
            with Horizontal():
                for i, (_, label, _) in enumerate(self.choices):
                    yield Button(label, id=f"choice-{i}", variant="primary" if i == 0 else "default", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_key(self, event: events.Key) -> None:
        for key, _, answer in self.choices:
            if event.key == key:
                event.stop()
                self.dismiss(answer)
                return
        if event.key == "escape":
            event.stop()
            self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        name = event.button.id or ""
        self.dismiss(self.choices[int(name.split("-")[1])][2] if name.startswith("choice-") else None)
