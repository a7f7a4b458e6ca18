"""Backward: one training window's backward pass, stage by stage from the loss to the embeddings, with the
chain rule of the selected cell, its finite-difference check, and one AdamW step of a chosen weight."""

from __future__ import annotations

import random

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from ..backexplain import adamw_text, check_text, explain_back, num
from ..backstages import BackStage, all_back_stages, fd_cell, stage_matrix, training_window, weight_cell
from ..stages import NO_ATTENTION
from ..tokens import token_labels
from ..widgets.blockmap import BlockHeatmap, prepare
from ..widgets.heatmap import Heatmap
from ..workers import background
from .backward_checks import GradientChecks
from .trace_view import field_text, prompt_text
from .view_state import LOADING, NO_MODEL, labels_of, snapshot_key

STAGE = Binding.Group("Stage")
LAYER = Binding.Group("Layer")
HEAD = Binding.Group("Head")
FOLLOW_S = 1.0  # how often the screen looks for new weights or a new prompt
PREPARE_IN_WORKER = 1_000_000  # cells from which a matrix is reduced to blocks off the UI thread


class BackwardScreen(GradientChecks, Screen):
    """Step backward through one window's gradients; f checks a cell, u explains an AdamW step, a applies it."""

    AUTO_FOCUS = "#grid"
    KEY_WIDGETS = (BlockHeatmap,)  # the grid, whose own keys the help lists with the screen's
    BINDINGS = [
        Binding("n", "stage(1)", "Next stage", group=STAGE),
        Binding("p", "stage(-1)", "Previous stage", group=STAGE),
        Binding("right_square_bracket", "layer(1)", "Next layer", key_display="]", group=LAYER),
        Binding("left_square_bracket", "layer(-1)", "Previous layer", key_display="[", group=LAYER),
        Binding("full_stop", "head(1)", "Next head", key_display=".", group=HEAD),
        Binding("comma", "head(-1)", "Previous head", key_display=",", group=HEAD),
        Binding("f", "check", "Check (finite diff.)"),
        Binding("u", "update", "AdamW step"),
        Binding("a", "apply", "Apply step"),
        Binding("e", "edit_prompt", "Edit prompt"),
        Binding("b", "batch_row", "Training window"),
        Binding("escape", "leave_prompt", "Back to the grid", show=False),
        Binding("up,down,left,right", "focus_grid", "Move the cell cursor (arrows or h j k l)", show=False),
    ]
    DEFAULT_CSS = """
    BackwardScreen #prompt-row { height: 1; padding: 0 1; }
    BackwardScreen #prompt-row > Label { width: auto; padding-right: 1; color: $accent; text-style: bold; }
    BackwardScreen #prompt { width: 1fr; }
    BackwardScreen #body { height: 1fr; }
    BackwardScreen #stages { width: 22; height: 1fr; border: none; border-right: solid $primary-darken-2;
                             scrollbar-size-vertical: 1; }
    BackwardScreen #main { width: 1fr; padding: 0 0 0 1; }
    BackwardScreen #stage-title { text-style: bold; color: $accent; }
    BackwardScreen #formula { text-style: bold; }
    BackwardScreen #description { color: $text-muted; }
    BackwardScreen #split { height: 1fr; }
    BackwardScreen BlockHeatmap { max-height: 50%; }
    BackwardScreen #explain-box { height: 1fr; min-height: 4; border-top: solid $primary-darken-2;
                                  scrollbar-size-vertical: 1; }
    BackwardScreen .no-model { height: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.bt = None  # the BackTrace on screen
        self.params: dict = {}  # the weights it was computed with (copies while a trainer can change them)
        self.key: tuple | None = None  # snapshot_key of bt
        self.error = ""
        self.vocab: list[str] = []
        self.stages: list[BackStage] = []
        self.index = 0
        self.explained = None  # the Explanation on screen, for tests
        self.checks: dict = {}  # (name, index) -> FiniteDifference
        self.update_shown = None  # the AdamWStep on screen, or None
        self.applied = None  # the AdamWStep last applied
        self._pending: tuple | None = None
        self._listed: tuple | None = None
        self._busy = 0  # checks and steps being computed
        self._shown = 0  # counts the stages drawn, so a worker's blocks for a stage left meanwhile are dropped
        self.step: int | None = None  # the trainer's step the weights are from
        self.row_start: int | None = None  # a training window from this token of the text, else the prompt
        self._rows = random.Random(0)  # where the next training window starts

    def compose(self) -> ComposeResult:
        with Horizontal(id="prompt-row"):
            yield Label("window")
            yield Input(compact=True, id="prompt", placeholder="a prompt: each token's target is the next one")
        yield Static(LOADING, classes="no-model")  # below the prompt, which stays in view when empty
        with Horizontal(id="body"):
            yield OptionList(id="stages")
            with Vertical(id="main"):
                yield Static(id="stage-title")
                yield Static(id="formula")
                yield Static(id="description")
                with Container(id="split"):
                    yield BlockHeatmap(id="grid")
                    with VerticalScroll(id="explain-box"):
                        yield Static(id="explain")

    def on_mount(self) -> None:
        self.query_one("#stages", OptionList).can_focus = False
        self.set_interval(FOLLOW_S, self._follow)
        self.redraw()

    def on_screen_resume(self) -> None:
        self.reload()

    def on_resize(self, event: events.Resize) -> None:
        if self.bt is not None and self.stages:
            self.call_after_refresh(self.show_stage)  # the grid's blocks are sized to the room

    def _follow(self) -> None:
        """Follow new weights (training) unless a check or a step is on screen or on its way: those
        belong to the weights shown, so the view holds still until the user leaves the stage."""
        if self.is_current and not (self.checks or self.update_shown or self._busy):
            self.reload()

    # -- data ------------------------------------------------------------------------------------
    def reload(self) -> None:
        """Compute the window's backward trace in a worker when the model, weights or prompt changed."""
        session = self.app.session
        field = self.query_one("#prompt", Input)
        if not field.has_focus:
            field.value = field_text(session.prompt) if self.row_start is None else ""
            field.placeholder = (
                "a prompt: each token's target is the next one"
                if self.row_start is None
                else f"training text from token {self.row_start} (b: another, e: a prompt)"
            )
        key = (*snapshot_key(session), self.row_start)
        if key == self.key or key == self._pending:
            return
        self._pending = key
        self.app.status = "backward pass…"
        self._compute(key, self.row_start)

    @background("backtrace")
    def _compute(self, key: tuple, row_start: int | None) -> None:
        import numpy as np

        from tinylm.core import TinyLMError, backtrace, prompt_window

        session = self.app.session
        model, bt, params, error, vocab, step = session.model, None, {}, "", [], None
        if model is not None:
            copy = session.trainer is not None
            try:
                with model.lock:  # the gradients and the weights shown beside them from the same step
                    if row_start is not None and session.trainer is not None:
                        window = training_window(session.trainer, row_start)
                    else:
                        window = prompt_window(model, session.prompt)
                    bt = backtrace(model, *window)
                    params = {name: np.array(w, copy=copy) for name, w in model.params.items()}
                    step = session.trainer.step_count if session.trainer is not None else None
                vocab = labels_of(model.tokenizer, model.config.vocab_size)
            except TinyLMError as exc:
                error = f"{exc}: press e to edit the window"
        if not get_current_worker().is_cancelled:
            try:
                self.app.call_from_thread(self._computed, key, bt, params, error, vocab, step)
            except RuntimeError:  # the app is closing
                pass

    def _computed(self, key, bt, params, error, vocab, step) -> None:
        if self._pending == key:
            self._pending = None
            if self.app.status == "backward pass…":
                self.app.status = "ready"
        self.key, self.bt, self.params, self.error, self.vocab = key, bt, params, error, vocab
        self.step = step
        self.checks, self.update_shown = {}, None
        self.redraw()

    def redraw(self) -> None:
        ready = self.bt is not None
        message = LOADING if self.key is None else NO_MODEL if self.app.session.model is None else self.error
        self.query_one(".no-model", Static).update(message)
        self.query_one(".no-model").display = not ready
        self.query_one("#body").display = ready
        self.query_one("#prompt-row").display = self.app.session.model is not None and self.key is not None
        if not ready:
            return
        current = self.stages[self.index] if self.stages else BackStage("loss")
        self.stages = all_back_stages(self.app.session.n_layer, self.attention)
        layer = self.app.session.layer if current.layer is not None else None
        self.index = next((i for i, s in enumerate(self.stages) if s == BackStage(current.key, layer)), 0)
        self.show_stage()

    @property
    def stage(self) -> BackStage:
        return self.stages[self.index]

    @property
    def attention(self) -> bool:
        """Whether the model has attention (an MLP-only one has no attention stages)."""
        return self.bt is None or "d.h.0.ln_1" in self.bt

    def show_stage(self) -> None:
        session, stage, bt = self.app.session, self.stage, self.bt
        if stage.layer is not None:
            session.layer = stage.layer
        head = session.head
        values = stage_matrix(bt, stage, head)
        tokens = token_labels(session.model.tokenizer, bt.ids) if session.model is not None else bt.tokens
        targets = token_labels(session.model.tokenizer, bt.targets) if session.model is not None else []
        rows, cols = self._labels(stage, tokens, targets)
        width = self.query_one("#main").content_size.width or self.app.size.width - 24
        self.query_one("#stage-title", Static).update(self._title(stage, head, bt.loss, width))
        self.query_one("#formula", Static).update(Text(stage.formula))
        shape = " x ".join(str(n) for n in bt[stage.name].shape) if stage.key != "loss" else f"{len(bt.ids)}"
        note = f" {NO_ATTENTION} d.res₁ flows on unchanged." if stage.layer is not None and not self.attention else ""
        self.query_one("#description", Static).update(f"({shape}) {stage.name}: {stage.description}{note}")
        self._fill_stage_list()
        grid = self.query_one("#grid", BlockHeatmap)
        mask = None
        if stage.key in ("att", "scores"):
            import numpy as np

            mask = np.triu(np.ones(values.shape, dtype=bool), 1)
        kind = "sequential" if stage.key == "loss" else "signed"  # losses are >= 0; gradients have signs
        # the LM head's gradient has a row per vocabulary entry (50,257 for GPT-2): shown whole, in blocks
        max_rows = max(self.query_one("#split").content_size.height // 2, 8) if stage.key == "lm_head" else None
        args = dict(kind=kind, mask=mask, max_rows=max_rows, max_cols=max((width - 10) // 2, 8))
        self._shown += 1
        if values.size < PREPARE_IN_WORKER:
            self._done_loading(grid)  # a large stage left before its blocks came
            grid.show_matrix(values, rows, cols, escape=False, **args)  # the labels are display labels already
            self.explain_cell(*grid.real_cursor)
            return
        # the LM head's gradient (V x C) or its logits (T x V): reducing millions of cells to blocks takes
        # longer than a frame, so a worker does it and the grid waits under a loading indicator
        grid.loading = True
        self.query_one("#explain", Static).update("")  # the stage before's cell is not this stage's
        self.app.status = "drawing the gradient…"
        self._prepare_grid(self._shown, values, rows, cols, args)

    @background("prepare")
    def _prepare_grid(self, shown: int, values, rows, cols, args: dict) -> None:
        prepared = prepare(values, **args)
        if not get_current_worker().is_cancelled:
            try:
                self.app.call_from_thread(self._grid_prepared, shown, values, rows, cols, args, prepared)
            except RuntimeError:  # the app is closing
                pass

    def _grid_prepared(self, shown: int, values, rows, cols, args: dict, prepared) -> None:
        if shown != self._shown:
            return  # the user has moved on to another stage
        grid = self.query_one("#grid", BlockHeatmap)
        self._done_loading(grid)
        grid.show_matrix(values, rows, cols, prepared=prepared, escape=False, **args)
        self.explain_cell(*grid.real_cursor)

    def _done_loading(self, grid: BlockHeatmap) -> None:
        grid.loading = False
        if self.app.status == "drawing the gradient…":
            self.app.status = "ready"

    def _title(self, stage: BackStage, head: int, loss: float, width: int) -> str:
        """The stage's title line, shortened to fit one line of `width` so that it never wraps over the grid:
        the stage counter goes first (the list beside shows where the stage is), then the training step,
        then the loss (the Loss stage shows it); the layer and head keep their ranges, as on every screen."""
        session = self.app.session
        where = f" · layer {stage.layer} (0–{session.n_layer - 1})" if stage.layer is not None else ""
        heads = f" · head {head} (0–{session.n_head - 1})" if stage.per_head else ""
        counter = f"  ({self.index + 1}/{len(self.stages)})"
        at = f" at step {self.step}" if self.step is not None else ""
        title = ""
        for shown_counter, tail in (
            (counter, f" · loss {loss:.4f}{at}"),
            ("", f" · loss {loss:.4f}{at}"),
            ("", f" · loss {loss:.4f}"),
            ("", ""),
        ):
            title = f"{stage.title}{where}{heads}{shown_counter}{tail}"
            if len(title) <= width:
                break
        return title

    def _labels(self, stage: BackStage, tokens: list[str], targets: list[str]):
        """Row and column labels: positions as 'token→target', vocabulary entries, or indices."""
        pos = [f"{t}→{y}" for t, y in zip(tokens, targets)] if stage.key in ("loss", "logits") else tokens
        if stage.key == "lm_head":
            return self.vocab, None
        if stage.key.startswith("w_"):
            return None, None
        cols = tokens if stage.key in ("att", "scores") else self.vocab if stage.key == "logits" else None
        return pos, cols

    def _fill_stage_list(self) -> None:
        stages_list = self.query_one("#stages", OptionList)
        layer = self.app.session.layer
        if self._listed != (layer, len(self.stages)):
            self._listed = (layer, len(self.stages))
            options: list[Option | None] = []
            for i, stage in enumerate(self.stages):
                if stage.layer is not None and stage.layer != layer:
                    continue
                if stage.key == "res_2":
                    options.append(
                        Option(
                            Text(f"─ layer {layer} (0–{self.app.session.n_layer - 1}) ─", style="dim"), disabled=True
                        )
                    )
                    if not self.attention:
                        options.append(Option(Text("(MLP only)", style="italic"), disabled=True))
                options.append(Option(stage.title, id=f"stage-{i}"))
            stages_list.clear_options()
            stages_list.add_options(options)
        stages_list.highlighted = stages_list.get_option_index(f"stage-{self.index}")

    def explain_cell(self, row: int, col: int) -> None:
        """The selected cell: its value, the chain rule with its operands, the check and the update if asked."""
        grid, stage, bt = self.query_one("#grid", BlockHeatmap), self.stage, self.bt
        R, C = grid.real_shape
        if not R or row >= R or col >= C or grid.loading:  # loading: the grid still holds the stage before
            return
        head = self.app.session.head
        expl = explain_back(stage, bt, self.params, row, col, head)
        text = Text()
        if self.update_shown is not None:
            text.append(adamw_text(self.update_shown))
            self.query_one("#explain", Static).update(text)
            return
        if grid.rule_text():
            text.append(grid.rule_text() + "\n", style="italic dim")
        label = f"[{grid.real_row_label(row)}, {grid.real_col_label(col)}]"
        text.append(f"{label} = {num(float(grid.full[row, col]))}\n", style="bold")
        cell = fd_cell(stage, row, col, head)
        check = self.checks.get(cell) if cell else None
        if check is not None:  # under the value, not after the chain rule: at 80x24 that is below the fold
            text.append(check_text(check) + "\n", style="bold")
        text.append("\n".join(expl.lines) + "\n")
        if check is None and cell is not None:
            hint = "f: check against a finite difference"
            if weight_cell(bt, stage, row, col, "transformer.wpe.weight" in self.params) is not None:
                hint += " · u: one AdamW step of this weight"
            text.append(hint + "\n", style="dim")
        self.query_one("#explain", Static).update(text)
        self.explained = expl

    @on(Heatmap.CellSelected, "#grid")
    def _cell_selected(self, message: Heatmap.CellSelected) -> None:
        if self.bt is not None and self.stages:
            self.update_shown = None
            self.explain_cell(message.row, message.col)

    @on(OptionList.OptionSelected, "#stages")
    def _stage_clicked(self, message: OptionList.OptionSelected) -> None:
        if message.option_id:
            self.index = int(message.option_id.split("-")[1])
            self._leave_stage()
            self.show_stage()

    # -- actions ---------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in ("check", "update", "apply") and self.query_one("#grid", BlockHeatmap).loading:
            return None  # shown, disabled: the selected cell is not on screen yet
        if action in ("stage", "layer", "head", "check", "update", "apply"):
            return self.bt is not None and bool(self.stages) and (action != "head" or self.attention)
        return True

    def action_focus_grid(self) -> None:
        self.set_focus(self.query_one("#grid"))

    def action_edit_prompt(self) -> None:
        field = self.query_one("#prompt", Input)
        field.value = field_text(self.app.session.prompt)
        self.set_focus(field)

    def action_batch_row(self) -> None:
        """A window of the training text, as a batch row holds it, instead of the prompt."""
        trainer = self.app.session.trainer
        if trainer is None:
            self.notify("This model has no training text here: train one (Config) or press e for a prompt.")
            return
        self.row_start = self._rows.randrange(len(trainer.train_ids))
        self._leave_stage()
        self.reload()

    def action_leave_prompt(self) -> None:
        self.query_one("#prompt", Input).value = field_text(self.app.session.prompt) if self.row_start is None else ""
        self.set_focus(self.query_one("#grid"))

    @on(Input.Submitted, "#prompt")
    def _prompt_submitted(self, message: Input.Submitted) -> None:
        """A new window: the prompt is shared with Inspect, so both show the same tokens."""
        self.app.session.prompt = prompt_text(message.value)
        self.row_start = None
        self._leave_stage()
        self.set_focus(self.query_one("#grid"))
        self.reload()

    def action_stage(self, delta: int) -> None:
        """Step toward the embeddings (n) or back toward the loss (p)."""
        self.index = max(0, min(self.index + delta, len(self.stages) - 1))
        self._leave_stage()
        self.show_stage()

    def action_layer(self, delta: int) -> None:
        session = self.app.session
        session.select(layer=session.layer + delta)
        key = self.stage.key if self.stage.layer is not None else "res_2"
        self.index = next(i for i, s in enumerate(self.stages) if s == BackStage(key, session.layer))
        self._leave_stage()
        self.show_stage()

    def action_head(self, delta: int) -> None:
        self.app.session.select(head=self.app.session.head + delta)
        self._leave_stage()
        self.show_stage()

    def _leave_stage(self) -> None:
        """Another stage: the checks and the step shown go, and the view follows the weights again."""
        self.checks, self.update_shown = {}, None
