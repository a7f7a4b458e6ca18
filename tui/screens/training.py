"""Training: progress, loss chart, metrics, live weight heatmaps and a sample of generated text."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import get_current_worker

from ..history_view import KEYS_HINT, Scrubbed, heads_line, memory_text, scrub, scrub_bindings, scrubbed
from ..safe_text import one_line
from ..training_worker import EMBEDDING, TrainingState, history_state
from ..widgets.blockmap import BlockHeatmap, prepare
from ..widgets.chart import BrailleChart, Series
from ..widgets.heatmap import Heatmap
from ..widgets.probbars import bar
from ..workers import background
from .overlays import MAX_OVERLAYS, OverlayPicker, legend_text, overlay_colour
from .view_state import CONFIG_KEY, NO_MODEL, labels_of

QUICK_CELLS = 1_000_000  # weight maps up to this many numbers are reduced at once; larger ones in a worker
CHART_EVERY_S = 0.5  # the chart and metrics redraw at 2 Hz, the progress line at the poll's 5 Hz: less UI work
# competing with the training thread for the GIL


def format_duration(seconds: float | None) -> str:
    """`1:05` or `1:02:03`; `–` when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "–"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def map_title(name: str, shape: str, rule: tuple[int, int] | None, tail: str, room: int) -> str:
    """A weight map's title in `room` columns: the name, shape, block rule (what a coloured cell is) and the
    tail (the step, or the key to the next matrix) last, so the ends are never cut; the rule gets shorter
    first, then the shape gives way (the map's axis labels show the extent)."""
    short = name.split()[-1]  # "token embeddings wte" -> "wte"
    if rule is None:
        candidates = [f"{name} {shape} · {tail}", f"{short} {shape} · {tail}", f"{short} · {tail}"]
    else:
        r, c = rule
        candidates = [
            f"{short} {shape} · cell=max|x| of {r}x{c} · {tail}",
            f"{short} {shape} · max|x| of {r}x{c} · {tail}",
            f"{short} {shape} · max|x| {r}x{c} · {tail}",
            f"{short} · max|x| {r}x{c} · {tail}",
            f"{short} {shape} · {tail}",
            f"{short} · {tail}",
        ]
    return next((line for line in candidates if len(line) <= room), candidates[-1])


def matrix_names(model) -> list[str]:
    """The 2-D weights worth watching, in model order (embeddings first); a model without attention keeps
    its attention weights at zero, so they are left out."""
    return [
        name for name, p in model.params.items() if p.ndim == 2 and (model.config.attention or ".attn." not in name)
    ]


class TrainingScreen(Screen):
    """Watch the model learn; pause, resume or stop; pick the weight matrix shown."""

    KEY_WIDGETS = (BlockHeatmap,)  # the grid, whose own keys the help lists with the screen's
    BINDINGS = [
        Binding("t", "train", "Train"),
        Binding("space,p", "pause", "Pause/resume"),
        Binding("s", "stop", "Stop"),
        Binding("m", "matrix(1)", "Next matrix"),
        Binding("M", "matrix(-1)", "Prev matrix", show=False),
        Binding("ctrl+s", "save", "Save checkpoint", show=False),
        Binding("o", "overlays", "Overlay runs"),
        *scrub_bindings(show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.matrix_index = -1  # index into matrix_names(); -1 = the first attention (or MLP) weight
        self._shown = (-1, -1, -1, -1)  # (run id, step, sample step, matrices step) on screen
        self._status = ""
        self._chart_time = 0.0  # when the chart and metrics were last drawn
        self._history_shown: tuple | None = None  # (snapshot step, snapshots, curve step) drawn while scrubbing
        self.overlays: list = []  # earlier runs (tinylm.core.SavedRun) whose loss curves the chart overlays

    def compose(self) -> ComposeResult:
        yield Static(id="progress")
        yield Static(id="message")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield BrailleChart(title="loss", id="loss")
                yield Static(id="overlay-legend")
                yield Static(id="metrics")
            with Vertical(id="right"):
                yield Static("token embeddings wte (V x C)", id="wte-title", classes="map-title")
                yield BlockHeatmap(compact=True, show_status=False, id="wte")
                yield Static(id="weights-title", classes="map-title")
                yield BlockHeatmap(compact=True, show_status=False, id="weights")
        yield Static(id="sample")

    def on_screen_resume(self) -> None:
        self._shown = (-1, -1, -1, -1)
        self.show_overlay_legend()  # the current run may have changed: the differences with it too
        self.refresh_view()

    # -- reading the slot ------------------------------------------------------------------------
    @property
    def run(self):
        return getattr(self.app, "training", None)

    def current_matrix(self) -> str | None:
        model = self.app.session.model
        if model is None:
            return None
        names = [n for n in matrix_names(model) if n != EMBEDDING]
        if not names:
            return None
        if self.matrix_index < 0:  # attention's first weight (the MLP's in a model without attention)
            self.matrix_index = next((i for i, n in enumerate(names) if "c_attn" in n or "c_fc" in n), 0)
        return names[self.matrix_index % len(names)]

    def training_tick(self, state: TrainingState) -> None:
        """Called by the app's 5 Hz poll of the training slot."""
        self.refresh_view(state)

    def refresh_view(self, state: TrainingState | None = None) -> None:
        """Redraw what changed since the last tick (cheap when nothing did)."""
        if not self.is_current:
            return
        session = self.app.session
        run = self.run
        if session.model is None:
            self.query_one("#progress", Static).update(NO_MODEL)
            return
        if run is None or run.trainer is not session.trainer:
            self.show_idle()
            return
        name = self.current_matrix()
        if name is not None and name not in run.watched:  # a new run watches the matrix this screen shows
            run.watch(name)
            state = None  # the slot has (or soon has) that matrix: read it again
            self._shown = (self._shown[0], self._shown[1], self._shown[2], -1)
        state = state or run.state()
        key = (id(run), state.step, state.sample_step, state.matrices_step)
        if key[0] != self._shown[0]:  # another run (maybe of a new model): everything is drawn afresh
            self._shown = (-1, -1, -1, -1)
        self.show_progress(state)
        at = scrubbed(session)
        if at is not None:  # the history's snapshot instead of the live numbers; the progress line stays live
            self.show_history(at, state)
            return
        if key == self._shown and state.status == self._status:
            return
        if state.status != self._status and state.status in ("diverged", "error"):
            self.notify(state.message, title="Training stopped", severity="error", timeout=10)
        self._status = state.status
        now = time.monotonic()
        if key[1] != self._shown[1] and (state.status != "running" or now - self._chart_time >= CHART_EVERY_S):
            self._chart_time = now
            self.show_chart(state)
            self.show_metrics(state)
        elif key[1] != self._shown[1]:
            key = (key[0], self._shown[1], key[2], key[3])  # drawn on a later tick
        if key[2] != self._shown[2]:
            self.show_sample(state.sample, state.sample_step)
        if key[3] != self._shown[3]:
            self.show_matrices(state.matrices, state.matrices_step)
        self._shown = key

    def show_idle(self) -> None:
        """A model without a live run: its weights, and how to start."""
        trainer = self.app.session.trainer
        if trainer is None:
            msg = f"This model has no trainer (a checkpoint without trainer state): press {CONFIG_KEY} to create a run."
        elif trainer.done:
            more = trainer.config.max_steps
            msg = (
                f"Finished {trainer.step_count} steps: t trains {more} more; {CONFIG_KEY} starts a new run; < history."
            )
        else:
            msg = f"Ready at step {trainer.step_count}/{trainer.config.max_steps}: press t to train."
        self.query_one("#progress", Static).update(Text(msg, style="bold"))
        at = scrubbed(self.app.session)
        if at is not None:  # without a trainer (a checkpoint opened without one) there is no curve
            self.show_history(at, history_state(trainer) if trainer is not None else TrainingState())
            return
        if self._shown[0] != 0:
            self.query_one("#message", Static).update("")  # a history line left from scrubbing
            model = self.app.session.model
            names = (EMBEDDING, self.current_matrix())
            mats = {n: model.params[n] for n in names if n in model.params}  # no run: nothing changes them
            self.show_matrices(mats, trainer.step_count if trainer else 0)
            if trainer is not None and trainer.history:
                self.show_chart(history_state(trainer))
                self.show_metrics(history_state(trainer))
            else:  # no curve of its own: the overlaid runs' alone (or an empty chart)
                last = max([run.train_steps[-1] for run in self.overlays], default=1)
                self.query_one("#loss", BrailleChart).set_series(self.overlay_series(), x_range=(0, last))
            self.query_one("#sample", Static).update(
                Text("a sample of generated text appears here while training", style="dim")
            )
            self._shown = (0, -1, -1, -1)

    def show_progress(self, state: TrainingState) -> None:
        m = state.metrics
        icon = {"running": "▶", "paused": "⏸", "finished": "✔", "stopped": "■"}.get(state.status, "✖")
        head = f"{icon} {state.status:<8} "
        numbers = f" {100 * state.fraction:5.1f}%  step {state.step}/{state.max_steps}"
        left = f"  left {format_duration(m.eta_s if m else None)}"
        elapsed = f"  elapsed {format_duration(m.elapsed_s if m else None)}"
        room = self.query_one("#progress").content_size.width or 78
        # the bar gives way first, so the numbers and both times always fit
        bar_w = max(room - len(head) - len(numbers) - len(left) - len(elapsed), 4)
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(head, style="bold")
        line.append(bar(state.fraction, min(bar_w, 40)), style="green")
        line.append(numbers + left)
        line.append(elapsed, style="dim")
        self.query_one("#progress", Static).update(line)
        message = state.message if state.status in ("diverged", "error") else ""
        if scrubbed(self.app.session) is None:  # scrubbing, the line is the snapshot's
            widget = self.query_one("#message", Static)
            widget.styles.text_wrap, widget.styles.text_overflow = "wrap", "fold"
            widget.update(message)

    def show_chart(self, state: TrainingState, at: Scrubbed | None = None) -> None:
        series = [
            Series("train", state.train_steps, state.train_losses, "cyan"),
            Series("val", state.val_steps, state.val_losses, "yellow"),
        ]
        if at is not None and at.snapshot.train_loss is not None:
            # a line across the chart at the snapshot's step, ending on its loss (the legend's value)
            shown = state.train_losses + state.val_losses + [at.snapshot.train_loss]
            ys = [max(shown), min(shown), at.snapshot.train_loss]
            series.append(Series(f"step {at.step}", [at.step] * 3, ys, "magenta", short=f"@{at.step}"))
        series += self.overlay_series()
        last = max([run.train_steps[-1] for run in self.overlays], default=1)
        self.query_one("#loss", BrailleChart).set_series(
            series, x_range=(0, max(state.max_steps, at.last_step if at else 1, last, 1))
        )

    # -- earlier runs on the chart -----------------------------------------------------------------
    def overlay_series(self) -> list[Series]:
        """Each overlaid run's training loss by step, in its colour (named in the legend below the chart)."""
        return [
            Series(run.name, run.train_steps, run.train_losses, overlay_colour(i), in_legend=False)
            for i, run in enumerate(self.overlays)
        ]

    def show_overlay_legend(self) -> None:
        legend = self.query_one("#overlay-legend", Static)
        legend.display = bool(self.overlays)
        chart = self.query_one("#loss", BrailleChart)
        chart.title = "loss by step" if self.overlays else "loss"
        if not self.overlays:
            return
        session = self.app.session
        model, trainer = session.model, session.trainer
        tokenizer = model.tokenizer.kind if model is not None and model.tokenizer is not None else None
        train = trainer.config if trainer is not None else None
        width = legend.content_size.width or self.query_one("#left").size.width or 38
        config = model.config if model is not None else None
        legend.update(legend_text(self.overlays, config, train, tokenizer, width))

    def toggle_overlay(self, path, add_only: bool = False) -> str:
        """Add the saved run in `path` to the chart, or take it off; returns what to tell the user."""
        from tinylm.core import TinyLMError, read_saved_run

        key = Path(path).resolve()
        for run in self.overlays:
            if run.path.resolve() == key:
                if add_only:
                    return f"{run.name} is on the chart already"
                self.overlays.remove(run)
                self.redraw_overlays()
                return f"{run.name} taken off the chart"
        if len(self.overlays) >= MAX_OVERLAYS:
            return f"at most {MAX_OVERLAYS} runs at once: take one off first (enter on it)"
        try:
            run = read_saved_run(path)
        except (TinyLMError, OSError) as exc:
            return f"cannot overlay {path}: {exc}"
        self.overlays.append(run)
        self.redraw_overlays()
        return f"{run.name} on the chart ({len(run.train_steps):,} steps of its training loss)"

    def redraw_overlays(self) -> None:
        self.show_overlay_legend()
        self._shown = (-1, -1, -1, -1)
        self._history_shown = None
        self.refresh_view()

    def action_overlays(self) -> None:
        """Pick saved runs whose loss curves the chart overlays."""
        self.app.push_screen(OverlayPicker(self))

    def show_metrics(self, state: TrainingState) -> None:
        m, v = state.metrics, state.last_val
        if m is None:
            self.query_one("#metrics", Static).update(Text("waiting for the first step…", style="dim"))
            return
        val = f"{v.val_loss:.3f}" if v is not None else "–"
        acc = f"{100 * v.accuracy:.1f}%" if v is not None and v.accuracy is not None else "–"
        rows = [
            ("train loss", f"{m.train_loss:.3f}", "val loss", val),
            ("accuracy", acc, "tokens/s", f"{m.tokens_per_s:,.0f}"),
            ("lr", f"{m.lr:.2e}", "grad norm", f"{m.grad_norm:.3f}"),
        ]
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, (a, av, b, bv) in enumerate(rows):  # 38 columns: fits the left half of an 80-column screen
            text.append(f"{a:<10}", style="dim")
            text.append(f"{av:>8}  ", style="bold")
            text.append(f"{b:<9}", style="dim")
            text.append(f"{bv:>9}" + ("\n" if i < len(rows) - 1 else ""), style="bold")
        self.query_one("#metrics", Static).update(text)

    def show_history(self, at: Scrubbed, state: TrainingState) -> None:
        """The scrubbed snapshot: which it is and what its heads do, its loss on the chart, its numbers, its
        sample and its token embeddings (drawn again only when the snapshot or the curve changed)."""
        key = (at.step, at.count, state.step)
        if key == self._history_shown:
            return
        running = state.status == "running"
        if (
            running
            and key[:2] == (self._history_shown or ())[:2]
            and time.monotonic() - self._chart_time < CHART_EVERY_S
        ):
            return  # only the live curve moved: redrawn at the chart's pace
        self._chart_time = time.monotonic()
        redraw_all = key[:2] != (self._history_shown or ())[:2]
        self._history_shown = key
        self.show_chart(state, at)
        if not redraw_all:
            return
        self._shown = (-1, -1, -1, -1)  # back to live, everything is drawn afresh
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"history {at.where}", style="bold magenta")
        line.append(f" · {memory_text(at)} · {KEYS_HINT}\n", style="not bold")
        line.append("heads on the probe: ", style="dim")
        room = self.size.width - 2 - len("heads on the probe: ")
        line.append(heads_line(at, self.app.session.model, room), style="")
        message = self.query_one("#message", Static)
        message.styles.text_wrap, message.styles.text_overflow = "nowrap", "ellipsis"  # one line each
        message.update(line)
        self.show_history_metrics(at)
        model = self.app.session.model
        prompt = model.tokenizer.decode(list(at.recorder.sample_prompt())) if model.tokenizer is not None else ""
        self.show_sample(prompt + at.snapshot.sample, at.step)
        self.show_matrices({EMBEDDING: at.snapshot.embedding}, at.step)

    def show_history_metrics(self, at: Scrubbed) -> None:
        s = at.snapshot
        rows = [
            ("train loss", "–" if s.train_loss is None else f"{s.train_loss:.3f}", "val loss",
             "–" if s.val_loss is None else f"{s.val_loss:.3f}"),
            ("val from", "–" if s.val_step is None else f"step {s.val_step}", "snapshot", f"{at.index + 1}/{at.count}"),
            ("history", f"{at.recorder.nbytes / 1e6:.1f} MB", "holds ≤", f"{at.recorder.max_snapshots} snaps"),
        ]  # fmt: skip
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, (a, av, b, bv) in enumerate(rows):
            text.append(f"{a:<10}", style="dim")
            text.append(f"{av:>8}  ", style="bold")
            text.append(f"{b:<9}", style="dim")
            text.append(f"{bv:>9}" + ("\n" if i < len(rows) - 1 else ""), style="bold")
        self.query_one("#metrics", Static).update(text)

    def show_sample(self, sample: str, step: int) -> None:
        text = Text(no_wrap=False, overflow="ellipsis")
        text.append(f"sample at step {step}: ", style="dim")
        text.append(one_line(sample.replace("\n", " ⏎ ").strip()))
        self.query_one("#sample", Static).update(text)

    def show_matrices(self, mats: dict, step: int) -> None:
        """Draw the token embeddings and the chosen weight matrix whole, in blocks when larger than their maps
        (a GPT-2 wte is reduced in a worker: 38 million numbers take about a second, its 50,257 token labels
        a third of one)."""
        model = self.app.session.model
        jobs = []
        if EMBEDDING in mats:
            V, C = mats[EMBEDDING].shape
            labels = partial(labels_of, model.tokenizer, V) if model.tokenizer is not None else None
            jobs.append(("#wte", mats[EMBEDDING], labels, ("token embeddings wte", f"{V}x{C}", f"step {step}")))
        name = self.current_matrix()
        if name in mats:
            rows, cols = mats[name].shape
            short = name.removeprefix("transformer.").removesuffix(".weight")
            jobs.append(("#weights", mats[name], None, (short, f"{rows}x{cols}", "m: next")))
        jobs = [(where, m, labels, title, *self._map_room(where)) for where, m, labels, title in jobs]
        if sum(job[1].size for job in jobs) <= QUICK_CELLS:
            self._show_maps([_prepared(job) for job in jobs])
        else:
            self._prepare_maps(jobs)

    def _map_room(self, where: str) -> tuple[int, int]:
        """Data rows and columns a weight map can show (half blocks: two rows a line; labels take 10 columns)."""
        width, height = self.query_one(where, Heatmap).size
        if not width or not height:  # before the first layout
            width, height = self.app.size.width // 2, max(self.app.size.height // 2 - 4, 4)
        return max((height - 1) * 2, 2), max(width - 10, 4)

    @background("weight-maps")
    def _prepare_maps(self, jobs: list) -> None:
        done = [_prepared(job) for job in jobs]
        if not get_current_worker().is_cancelled:
            try:
                self.app.call_from_thread(self._show_maps, done)
            except RuntimeError:  # the app is closing
                pass

    def _show_maps(self, done: list) -> None:
        for where, matrix, labels, title, rows, cols, prepared in done:
            grid = self.query_one(where, BlockHeatmap)
            grid.show_matrix(
                matrix, labels, kind="signed", max_rows=rows, max_cols=cols, prepared=prepared, escape=False
            )
            red, (name, shape, tail) = prepared.reduced, title
            rule = None if red.identity else (red.rows, red.cols)
            title_widget = self.query_one(f"{where}-title", Static)
            room = title_widget.content_size.width or self.app.size.width // 2
            title_widget.update(Text(map_title(name, shape, rule, tail, room), no_wrap=True, overflow="ellipsis"))

    # -- actions ---------------------------------------------------------------------------------
    def action_train(self) -> None:
        if self.app.session.model is None:
            self.notify(NO_MODEL, severity="warning")
            return
        run = self.run
        if run is not None and run.trainer is self.app.session.trainer and run.state().status == "paused":
            run.resume()
        else:
            self.app.start_training()
        self._shown = (-1, -1, -1, -1)
        self.refresh_view()

    def action_pause(self) -> None:
        run = self.run
        if run is None or not run.state().active:
            self.notify("Not training: press t to train.")
            return
        run.toggle_pause()
        self.refresh_view()

    def action_stop(self) -> None:
        run = self.run
        if run is None or not run.state().active:
            self.notify("Not training.")
            return
        self.app.stop_training()
        self.refresh_view()

    def action_matrix(self, delta: int) -> None:
        self.current_matrix()
        self.matrix_index += delta
        name = self.current_matrix()
        run = self.run
        if run is not None and run.trainer is self.app.session.trainer and name:
            run.watch(name)
        self._shown = (self._shown[0], self._shown[1], self._shown[2], -1) if run else (-1, -1, -1, -1)
        self.refresh_view()

    def action_save(self) -> None:
        self.app.save_checkpoint()

    def action_scrub(self, delta: int) -> None:
        """Show the previous or next snapshot of the training history (past the latest: live again)."""
        message = scrub(self.app.session, delta)
        if message:
            self.notify(message)
        self._history_shown = None
        self._shown = (-1, -1, -1, -1)
        self.refresh_view()

    def action_live(self) -> None:
        """Leave the history: the live numbers again."""
        self.app.session.history_step = None
        self._history_shown = None
        self._shown = (-1, -1, -1, -1)
        self.refresh_view()


def _prepared(job: tuple) -> tuple:
    """A map's job with its labels made (a callable: in the thread that prepares the map) and its blocks reduced."""
    where, matrix, labels, title, rows, cols = job
    labels = labels() if callable(labels) else labels
    return where, matrix, labels, title, rows, cols, prepare(matrix, kind="signed", max_rows=rows, max_cols=cols)
