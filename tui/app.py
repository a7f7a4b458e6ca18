"""The tinylm-tui App: the registry's screens as modes on their keys, shared Session, one background training run."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from . import gc_policy
from .css_preload import preload_default_css, styled_as_the_app
from .safe_text import one_line, printable
from .screens.config_form import DEFAULT_CHECKPOINT
from .screens.registry import SCREENS, ScreenEntry, key_of
from .session import Session
from .widgets.modebar import Chrome
from .workers import background

if TYPE_CHECKING:  # numpy and the core load in the background, so the first screen paints at once
    from .training_worker import TrainingRun

POLL_HZ = 5  # how often the UI reads the training slot: often enough to look live, never once per step


def screen_class(entry: ScreenEntry) -> type[Screen]:
    """The Screen class of a registry entry, with the mode bar and footer added at the bottom."""
    return with_chrome(entry.screen_class())


def holds_another(path: str, own: str | None) -> bool:
    """True when `path` exists and is not empty, and is not the directory this model came from or went to."""
    target = Path(path)
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        return False
    return own is None or target.resolve() != Path(own).resolve()


def free_path(path: str) -> str:
    """`path-2`, `path-3`, ...: the first that does not exist (`dir/` gives `dir-2`, not `dir/-2`)."""
    path = str(Path(path))
    n = 2
    while Path(f"{path}-{n}").exists():
        n += 1
    return f"{path}-{n}"


def extend_training(trainer) -> int:
    """Let a finished trainer run as many steps again; the cosine schedule keeps the steps done and the
    new ones run at its final learning rate. Returns the number of steps added."""
    config = trainer.config
    more = max(config.max_steps, 1)
    if config.lr_decay_steps is None:
        config.lr_decay_steps = config.max_steps
    config.max_steps += more
    return more


_CHROMED: dict[type, type] = {}


def with_chrome(cls: type[Screen]) -> type[Screen]:
    """A subclass of `cls` (same name, so CSS and isinstance still match) that adds the bottom chrome."""
    if cls not in _CHROMED:

        def compose(self) -> ComposeResult:
            has_footer = False
            for widget in cls.compose(self):
                has_footer = has_footer or isinstance(widget, Footer)
                yield widget
            yield Chrome(footer=not has_footer)

        def __init__(self, *args, **kwargs) -> None:
            cls.__init__(self, *args, **kwargs)
            styled_as_the_app(self)

        members = {"compose": compose, "__init__": __init__, "__module__": cls.__module__}
        _CHROMED[cls] = type(cls.__name__, (cls,), members)
    return _CHROMED[cls]


def save_problem(path: str, error: OSError) -> str:
    """Why a checkpoint directory cannot be written, in words, with what to do."""
    ancestor = os.path.abspath(path)
    while not os.path.lexists(ancestor) and os.path.dirname(ancestor) != ancestor:
        ancestor = os.path.dirname(ancestor)
    if ancestor != os.path.abspath(path) and not os.path.isdir(ancestor):
        reason = f"{ancestor} is a file, not a directory"
    elif not os.access(ancestor, os.W_OK):
        reason = f"{ancestor} is not writable"
    else:
        reason = (error.strerror or str(error)).lower()
    return f"{reason}; choose another directory"


class TinyLMApp(App):
    """Configure, train, inspect and run a small GPT-2 from the keyboard."""

    CSS_PATH = "app.tcss"
    TITLE = "tinylm"
    BINDINGS = [
        Binding("question_mark", "help", "Help", show=False),  # the mode bar shows it
        Binding("q", "quit", "Quit"),
        Binding("ctrl+p", "command_palette", "Commands", show=False),
        Binding("ctrl+e", "save_screen", "Save the screen (SVG + text)", show=False),
    ]
    status: reactive[str] = reactive("")

    def __init__(
        self,
        session: Session | None = None,
        *,
        start_training: bool = False,
        theme: str | None = None,
        corpus: str | None = None,
        checkpoint: str | None = None,
        warm_up: bool | None = None,
        threads: int | None = None,
        screens: tuple[ScreenEntry, ...] = SCREENS,
    ) -> None:
        super().__init__()
        self.screen_entries = screens  # the modes, their keys, the mode bar, help and palette entries
        for entry in screens:
            self.add_mode(entry.mode, partial(lambda e: screen_class(e)(), entry))
            self.bind(entry.key, f"switch_mode({entry.mode!r})", description=entry.label, show=False)
        self.building = session is None  # the CLI path: build the default model in the background
        self.session = session if session is not None else Session()
        self.training: TrainingRun | None = None
        self.core_loaded = session is not None  # tests pass a session, so the core is imported already
        self._start_training = start_training
        self._corpus_arg, self._checkpoint_arg = corpus, checkpoint
        self._warm_up = self.building if warm_up is None else warm_up
        self._seen_step = -1
        self._start_when_ready = False  # training was asked for while the kernels were compiling
        self.threads = threads  # training threads (None: leave the process's caps as they are)
        self._gc_thresholds: tuple[int, int, int] | None = None  # the collector's, from before the UI started
        if theme:
            self.theme = theme

    def notify(self, message: str, *, title: str = "", severity="information", timeout=None, markup=False) -> None:
        """A toast whose text (often an error naming a file or quoting a corpus) is shown as it is:
        control characters made visible, brackets not read as markup."""
        message, title = printable(str(message)), one_line(title)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def action_help_quit(self) -> None:
        """ctrl+c does not quit (in a text field it copies): say in plain words which keys do (Textual's
        own hint is markup, which this app's toasts show as it is)."""
        self.notify("q quits (esc first in a text field), or ctrl+q anywhere.", title="Do you want to quit?")

    # -- lifecycle -------------------------------------------------------------------------------
    def on_mount(self) -> None:
        self._gc_thresholds = gc_policy.start()  # the model loaded before the app (tests, tools) is frozen too
        self.set_interval(1 / POLL_HZ, self.poll_training)
        self.status = "loading…" if self.building else "ready" if self.session.has_model else "no model"
        if not self.building:  # the core is here already: every screen's CSS read before the first is shown
            self.preload_screens()
        self.switch_mode("config" if not self._start_training else "training")
        if self.building:  # after the first screen is on the terminal: imports hold the GIL for a while
            self.screen.call_after_refresh(lambda: self.set_timer(0.05, self.load_initial))
        elif self._start_training and self.session.trainer is not None:
            self.start_training()

    @background("startup")
    def load_initial(self) -> None:
        """Import the engine, build the default model (or load the checkpoint), compile the kernels, all
        off the UI thread (importing numpy and numba alone takes most of a second)."""
        from tinylm.core import TinyLMError

        from .startup import build, warm_up, warm_up_in_subprocess

        for entry in self.screen_entries:  # imported here, so that their CSS is read before any is shown
            entry.screen_class()
        self.call_from_thread(self._core_ready)
        try:
            built = build(self._corpus_arg, self._checkpoint_arg)
        except Exception as exc:  # noqa: BLE001 - a damaged checkpoint may raise anything: say so and go on
            message = str(exc) if isinstance(exc, TinyLMError) else f"{type(exc).__name__}: {exc}"
            self.call_from_thread(self.notify, message, title="Could not load", severity="error", timeout=10)
            built = None
        if self._warm_up:
            self.call_from_thread(self.set_status, "compiling kernels…")
            error = warm_up_in_subprocess()
            if error:  # compile here after all: slower to start, but it works
                self.call_from_thread(self.set_status, "compiling kernels (in the app)…")
            warm_up(every_path=False)  # loads the common kernels from the cache the child wrote: quick
        if built is None and self._checkpoint_arg:
            try:  # a bad checkpoint still opens the app, on the default model
                built = build(self._corpus_arg)
            except Exception as exc:  # noqa: BLE001 - reported on screen, never a stuck status
                self.call_from_thread(self._loaded, None, str(exc))
                return
        self.call_from_thread(self._loaded, built, "")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that failed with an error nobody caught still reaches the screen, as one message."""
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            self.notify(f"{type(error).__name__}: {error}", title="Something failed", severity="error", timeout=10)
            if event.worker.group == "startup":
                self._loaded(None, "")

    @property
    def corpus_arg(self) -> str | None:
        """The corpus named on the command line (a built-in name or a path), or None."""
        return self._corpus_arg

    @property
    def checkpoint_arg(self) -> str | None:
        """The checkpoint named on the command line, or None."""
        return self._checkpoint_arg

    def preload_screens(self) -> None:
        """Every screen's classes imported and their CSS read now, at start, rather than at each first visit."""
        for entry in self.screen_entries:
            entry.screen_class()
        from .screens import ask, help, quit  # noqa: F401 - the dialogs too

        preload_default_css(self.stylesheet)

    def _core_ready(self) -> None:
        self.preload_screens()
        self.core_loaded = True
        self.status = "building the model…"
        self.refresh_screen()

    def _loaded(self, built, error: str) -> None:
        self.building = False
        if built is not None and self.session.model is None:  # unless a model was made meanwhile
            self.session.set_model(
                built.model, built.trainer, built.corpus, checkpoint=built.checkpoint, history=built.history
            )
        if self.session.model is None:
            self.status = "no model"
            if error:
                self.notify(error, title="Could not load", severity="error", timeout=10)
            return
        self.status = "ready"
        if self._start_training or self._start_when_ready:
            self.start_training()
        self.refresh_screen()

    def set_status(self, text: str) -> None:
        self.status = text

    def refresh_screen(self) -> None:
        """Tell the visible screen that the session changed (screens re-read it on resume)."""
        from textual import events

        self.screen.post_message(events.ScreenResume())

    # -- training --------------------------------------------------------------------------------
    def start_training(self) -> TrainingRun | None:
        """Start (or continue) training the session's trainer in the background."""
        from .training_worker import TrainingRun

        if self.building:  # compiling in this process would freeze the screen: wait for the warm-up
            self._start_when_ready = True
            self.notify("Training starts as soon as the kernels are compiled.")
            return None
        trainer = self.session.trainer
        if trainer is None:
            key = key_of("config", self.screen_entries)
            self.notify(f"This model has no trainer: create one on the Config screen ({key}).", severity="warning")
            return None
        if self.training is not None and self.training.trainer is trainer and self.training.alive:
            return self.training
        if trainer.done:
            more = extend_training(trainer)
            self.notify(f"Training {more} more steps, to step {trainer.config.max_steps} (at the final learning rate).")
        # a model trained on a GPU: the screens read its CPU copy (the session's model), refreshed by the run
        host = self.session.model if self.session.model is not trainer.model else None
        self.training = TrainingRun(
            trainer, sample_prompt=self.session.prompt or "\n", threads=self.threads, host_model=host
        )
        self.training.start()
        return self.training

    def stop_training(self) -> None:
        if self.training is not None:
            self.training.stop()
            self.poll_training()

    @property
    def training_active(self) -> bool:
        return self.training is not None and self.training.state().active

    def poll_training(self) -> None:
        """Read the run's step; bump the session version when the weights moved, update the status,
        and let the visible screen redraw in the same tick (one compositor pass, not two)."""
        if self.training is None:
            return
        state = self.training.state()
        tick = getattr(self.screen, "training_tick", None)
        if tick is not None and self.screen.is_mounted:
            try:
                tick(state)
            except NoMatches:  # the screen is composing or being torn down (e.g. at exit)
                pass
        if state.step != self._seen_step:
            self._seen_step = state.step
            self.session.bump()
        icon = {"running": "▶", "paused": "⏸", "finished": "✔", "stopped": "■"}.get(state.status, "✖")
        self.status = f"{icon} {100 * state.fraction:.0f}% {state.step}/{state.max_steps}"

    def save_checkpoint(self, path: str | None = None, then: Callable[[], object] | None = None) -> str | None:
        """Save the model (and trainer state) atomically, then call `then`. A directory that holds something
        other than this model's own checkpoint is never replaced without asking (the answer comes later,
        so the return value is the path saved to now, or None: not saved, or waiting for the answer)."""
        model = self.session.model
        if model is None:
            self.notify("No model to save yet.", severity="warning")
            return None
        path = path or self.session.checkpoint_path or self.session.settings.get("save_to") or DEFAULT_CHECKPOINT
        if holds_another(path, self.session.checkpoint_path):
            from .screens.ask import Ask

            other = free_path(path)
            question = f"{path} already holds another checkpoint (or other files). Replace it?"
            choices = [("n", f"save as {other}", "new"), ("o", "overwrite it", "overwrite")]

            def answer(choice: str | None) -> None:
                if choice is not None:
                    self._save_now(other if choice == "new" else path, then)

            self.push_screen(Ask(question, choices), answer)
            return None
        return self._save_now(path, then)

    def _save_now(self, path: str, then: Callable[[], object] | None) -> str | None:
        from tinylm.core import TinyLMError, save_checkpoint

        try:
            with self.session.model.lock:
                save_checkpoint(path, self.session.model, trainer=self.session.trainer)
        except TinyLMError as exc:
            self.notify(f"Could not save: {exc}", severity="error", timeout=10)
            return None
        except OSError as exc:  # the reason in words, not the errno of a temporary name inside the save
            self.notify(f"Could not save to {path}: {save_problem(path, exc)}", severity="error", timeout=10)
            return None
        self.session.mark_saved(path)
        self.notify(f"Saved to {path}")
        if then is not None:
            then()
        return path

    def replace_model(self, proceed: Callable[[], object], doing: str = "replacing it") -> None:
        """Run `proceed` (which installs another model) once the current one's unsaved training is saved,
        or the user has said it may go; a live run is stopped first either way."""
        if not self.session.unsaved and not self.training_active:
            proceed()
            return
        from .screens.ask import Ask

        def answer(choice: str | None) -> None:
            if choice is None:
                return
            self.stop_training()
            if choice == "save":
                self.save_checkpoint(then=proceed)
            else:
                proceed()

        state = "is training" if self.training_active else "has unsaved training"
        question = f"The current model ({self.session.steps_done} steps) {state}. Save it before {doing}?"
        self.push_screen(Ask(question, [("y", "save it first", "save"), ("n", "discard it", "discard")]), answer)

    # -- actions ---------------------------------------------------------------------------------
    def action_save_screen(self) -> None:
        """Save the current screen as SVG and plain text in the working directory (or home, or /tmp)."""
        from .screenshot import save_screen

        try:
            svg, txt = save_screen(self, f"tinylm-{self.current_mode or 'screen'}")
        except OSError as exc:
            self.notify(f"Could not save the screen: {exc}", severity="error", timeout=10)
            return
        self.notify(f"Saved the screen to {svg} and {txt.name}", timeout=8)

    def action_help(self) -> None:
        from .screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        """Quit; while a run is training, or trained weights are not saved, ask whether to save first."""
        if self.training_active or self.session.unsaved:
            from .screens.quit import QuitScreen

            if not isinstance(self.screen, QuitScreen):
                if self.training_active:
                    question = QuitScreen()
                else:
                    situation = f"The model trained {self.session.steps_done} steps and is not saved."
                    question = QuitScreen(situation, "stay")
                self.push_screen(question, self._quit_answer)
            return
        self.shutdown()

    def _quit_answer(self, answer: str | None) -> None:
        if answer == "save":
            if self.training is not None:
                self.training.stop()
            self.save_checkpoint(then=self.shutdown)  # on failure the message explains why; nothing is lost
        elif answer == "quit":
            self.shutdown()

    def shutdown(self) -> None:
        if self.training is not None:
            self.training.stop(wait=2.0)
        self.exit()

    def on_unmount(self) -> None:
        if self.training is not None:
            self.training.stop(wait=2.0)
        if self._gc_thresholds is not None:
            gc_policy.stop(self._gc_thresholds)
            self._gc_thresholds = None

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every screen switch, every key of the current screen, and Textual's own commands."""
        for entry in self.screen_entries:
            yield SystemCommand(
                f"Screen: {entry.label}",
                f"{entry.description} (key {entry.key})",
                partial(self.switch_mode, entry.mode),
            )
        yield SystemCommand("Help", "List every key (key ?)", self.action_help)
        yield SystemCommand("Save the screen", "as SVG and plain text (key ctrl+e)", self.action_save_screen)
        seen = set()
        for active in screen.active_bindings.values():
            binding, node = active.binding, active.node
            if not binding.description or node is self or binding.description in seen:
                continue
            seen.add(binding.description)
            yield SystemCommand(
                binding.description,
                f"key {self.get_key_display(binding)}",
                partial(self.run_action, binding.action, node),
            )
        yield from super().get_system_commands(screen)


def create_app(
    session: Session | None = None,
    *,
    start_training: bool = False,
    theme: str | None = None,
    corpus: str | None = None,
    checkpoint: str | None = None,
    threads: int | None = None,
    screens: tuple[ScreenEntry, ...] = SCREENS,
) -> TinyLMApp:
    """The app for the CLI (session=None: build the default model in the background) and for tests."""
    return TinyLMApp(
        session,
        start_training=start_training,
        theme=theme,
        corpus=corpus,
        checkpoint=checkpoint,
        threads=threads,
        screens=screens,
    )
