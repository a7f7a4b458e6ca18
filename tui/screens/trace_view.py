"""TraceView: the base of the screens that show one snapshot of the model (Inspect, Attention, Vocabulary)."""

from __future__ import annotations

from textual import on
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Input
from textual.worker import get_current_worker

from ..safe_text import NEWLINE, one_line
from ..widgets.heatmap import Heatmap
from ..workers import background
from .view_state import LOADING, NO_MODEL, ViewState, is_quick, snapshot_key

FOLLOW_S = 1.0  # how often a shown view checks for new weights while a model trains


def field_text(prompt: str) -> str:
    """The prompt as a one-line field shows it: line breaks as ⏎, tabs as ⇥, other controls visible."""
    return one_line(prompt)


def prompt_text(field: str) -> str:
    """The prompt a field's text stands for."""
    return field.replace(NEWLINE, "\n").replace("⇥", "\t")


class TraceView(Screen):
    """Keeps `self.state` in step with the session without ever waiting for a training step on the UI thread."""

    GRID = "#grid"  # the heatmap that arrow keys move in
    BINDINGS = [
        Binding("up,down,left,right", "focus_grid", "Move the cell cursor (arrows or h j k l)", show=False),
        Binding("ctrl+j", "new_line", "Line break in the prompt", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.state = ViewState()
        self._pending: tuple | None = None  # the snapshot key a worker is computing

    def on_mount(self) -> None:
        self.set_interval(FOLLOW_S, self._follow)
        self.redraw()  # the waiting message until the first snapshot arrives

    def on_screen_resume(self) -> None:
        self.reload(force=True)

    def _follow(self) -> None:
        if self.is_current:
            self.reload()

    def reload(self, force: bool = False) -> None:
        """Take a new snapshot when the model, weights or prompt changed; redraw (also when `force`)."""
        session = self.app.session
        try:
            prompt = self.query_one("#prompt", Input)
            if not prompt.has_focus:
                prompt.value = field_text(session.prompt)
        except NoMatches:
            pass
        if snapshot_key(session) == self.state.key:
            if force:
                self.apply(self.state)
            return
        key = snapshot_key(session)
        if key == self._pending:
            return  # a worker is on it already
        state = ViewState.take(session, blocking=False) if is_quick(session.model, len(session.prompt)) else None
        if state is None:  # a large model, or a training step holds the weights: a worker waits, not the UI
            self._pending = key
            self.app.status = "tracing…"
            self._take_in_background()
        else:
            self.apply(state)

    @background("snapshot")
    def _take_in_background(self) -> None:
        state = ViewState.take(self.app.session)
        if not get_current_worker().is_cancelled:
            try:
                self.app.call_from_thread(self._taken, state)
            except RuntimeError:  # the app is closing
                pass

    def _taken(self, state: ViewState) -> None:
        if self._pending == state.key:
            self._pending = None
            if self.app.status == "tracing…":
                self.app.status = "ready"
        self.apply(state)

    def apply(self, state: ViewState) -> None:
        """Show a snapshot (subclasses draw it in `redraw`)."""
        self.state = state
        self.redraw()

    def redraw(self) -> None:
        raise NotImplementedError

    def message(self) -> str:
        """What to show instead of the view when there is no trace."""
        if self.state.key is None:
            return LOADING
        if self.app.session.model is None:
            return NO_MODEL
        return self.state.error or "Type a prompt: press e, then enter"

    def grid(self) -> Heatmap:
        return self.query_one(self.GRID, Heatmap)

    def action_focus_grid(self) -> None:
        self.set_focus(self.grid())

    def action_edit_prompt(self) -> None:
        self.set_focus(self.query_one("#prompt", Input))  # at once, so the next keys typed go into the field

    def action_new_line(self) -> None:
        """Type a line break (shown as ⏎) into the prompt field."""
        try:
            field = self.query_one("#prompt", Input)
        except NoMatches:
            return
        if field.has_focus:
            field.insert_text_at_cursor(NEWLINE)

    def action_leave_prompt(self) -> None:
        self.query_one("#prompt", Input).value = field_text(self.app.session.prompt)
        self.set_focus(self.grid())

    @on(Input.Submitted, "#prompt")
    def _prompt_submitted(self, message: Input.Submitted) -> None:
        self.app.session.prompt = prompt_text(message.value)
        self.set_focus(self.grid())
        self.reload(force=True)
