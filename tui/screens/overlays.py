"""Earlier runs on the Training screen's loss chart: a picker of saved checkpoints, their colours, and a
legend saying how each differs from the current run."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from ..safe_text import one_line
from .config_form import DEFAULT_CHECKPOINT

# One colour per overlay, none of them the live curves' (cyan train, yellow val) or the history's magenta.
OVERLAY_COLOURS = ("green", "bright_red", "bright_blue", "bright_white", "orange3", "purple")
MAX_OVERLAYS = len(OVERLAY_COLOURS)
RUN_DIRS = ("runs",)  # where `tinylm train` saves unless told otherwise


def search_roots(session) -> list[Path]:
    """Where saved runs are looked for: beside the app's checkpoint directory (the Config form's default
    and the one in use), and the command line's runs/ directory."""
    places = [DEFAULT_CHECKPOINT, session.checkpoint_path, session.settings.get("save_to")]
    roots = [Path(p).parent for p in places if p] + [Path(p) for p in RUN_DIRS]
    return list(dict.fromkeys(roots))


def overlay_colour(index: int) -> str:
    return OVERLAY_COLOURS[index % len(OVERLAY_COLOURS)]


def legend_text(overlays, model, train, tokenizer, width: int) -> Text:
    """One line per overlay in its colour: its name and how it differs from the current run."""
    from tinylm.core import run_differences

    out = Text(no_wrap=True, overflow="ellipsis")
    for i, run in enumerate(overlays):
        diffs = run_differences(run, model, train, tokenizer) if model is not None else []
        val = f" · val {run.last_val:.3f}" if run.last_val is not None else ""
        out.append("━ ", style=overlay_colour(i))
        line = f"{one_line(run.name)}: {', '.join(diffs) or 'same settings'}"
        room = max(width - 2, 8) - len(val)
        if len(line) > room:  # the differences give way, not the loss: a cut 'val 1.4' reads as a whole number
            line = line[: max(room - 1, 0)] + "…"
        out.append(line + val + ("\n" if i < len(overlays) - 1 else ""))
    return out


class OverlayPicker(ModalScreen[None]):
    """Saved runs to overlay: enter adds or removes the highlighted one; a typed directory is added too."""

    BINDINGS = [Binding("escape", "close", "Close"), Binding("tab", "app.focus_next", "Next field", show=False)]
    DEFAULT_CSS = """
    OverlayPicker { align: center middle; }
    OverlayPicker > Vertical { width: 90%; max-width: 100; height: 80%; border: round $accent;
                               background: $surface; padding: 0 1; }
    OverlayPicker #overlay-help { height: auto; color: $text-muted; }
    OverlayPicker OptionList { height: 1fr; }
    OverlayPicker #overlay-path { margin-top: 1; }
    """

    def __init__(self, training) -> None:
        super().__init__()
        self.training = training  # the TrainingScreen whose overlays this edits
        self.paths: list[Path] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(id="overlay-help")
            yield OptionList(id="overlay-runs")
            yield Input(placeholder="or type a checkpoint directory, then enter", compact=True, id="overlay-path")

    def on_mount(self) -> None:
        self.fill()
        self.query_one(OptionList).focus()

    def fill(self) -> None:
        from tinylm.core import TinyLMError, describe_run, find_saved_runs, read_saved_run

        session = self.app.session
        roots = search_roots(session)
        found = find_saved_runs(roots, skip=[session.checkpoint_path])
        shown = {run.path.resolve() for run in self.training.overlays}
        extra = [run.path for run in self.training.overlays if run.path.resolve() not in {p.resolve() for p in found}]
        self.paths = extra + found
        options = []
        for path in self.paths:
            on = path.resolve() in shown
            try:
                what = describe_run(read_saved_run(path))
            except (TinyLMError, OSError) as exc:
                what = f"cannot be read: {exc}"
            label = Text(no_wrap=True, overflow="ellipsis")
            label.append("✓ " if on else "  ", style="bold green")
            label.append(one_line(str(path)), style="bold" if on else "")
            label.append(f"  {what}", style="dim")
            options.append(Option(label, id=str(len(options))))
        runs = self.query_one(OptionList)
        highlighted = runs.highlighted
        runs.clear_options()
        runs.add_options(options)
        if options:
            runs.highlighted = min(highlighted or 0, len(options) - 1)
        where = ", ".join(one_line(str(r)) for r in roots)
        count = f"{len(self.training.overlays)} of at most {MAX_OVERLAYS} shown" if self.training.overlays else ""
        self.query_one("#overlay-help", Static).update(
            Text.assemble(
                ("Overlay earlier runs' loss curves", "bold"),
                f"  {count}\n",
                f"enter: add or remove · tab: type a directory · esc: close\nsaved runs in {where}"
                if self.paths
                else f"no saved runs in {where}: type a checkpoint directory below",
            )
        )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.toggle(self.paths[int(event.option_id)])

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if text:
            self.toggle(Path(text).expanduser(), add_only=True)
            event.input.value = ""

    def toggle(self, path: Path, add_only: bool = False) -> None:
        message = self.training.toggle_overlay(path, add_only=add_only)
        if message:
            self.app.notify(message, severity="warning" if message.startswith(("cannot", "at most")) else "information")
        self.fill()

    def action_close(self) -> None:
        self.dismiss(None)
