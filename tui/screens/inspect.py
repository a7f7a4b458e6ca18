"""Inspect: one prompt's forward pass, stage by stage, with how the selected number was computed."""

from __future__ import annotations

from dataclasses import replace

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from ..explain import explain
from ..stages import NO_ATTENTION, Stage, all_stages, layer_keys, stage_view
from ..widgets.blockmap import BlockHeatmap
from ..widgets.heatmap import Heatmap
from .ablation import ABLATION_BINDINGS, AblationControls
from .trace_view import TraceView
from .view_state import LOADING

STAGE = Binding.Group("Stage")
LAYER = Binding.Group("Layer")
HEAD = Binding.Group("Head")
WIDE = 150  # from this many columns the explanation sits beside the grid
WIDEN_FROM = 120  # from this many columns a grid's cells widen to use the room (2 columns each below)


class InspectScreen(AblationControls, TraceView):
    """Step through the stages of a forward pass; the cell cursor explains each number. The knock-out keys
    of Attention work here too (on the layer and head shown), with their panel above the explanation."""

    AUTO_FOCUS = "Heatmap"
    KEY_WIDGETS = (BlockHeatmap,)  # the grid, whose own keys the help lists with the screen's
    BINDINGS = [
        Binding("n", "stage(1)", "Next stage", group=STAGE),
        Binding("p", "stage(-1)", "Previous stage", group=STAGE),
        Binding("right_square_bracket", "layer(1)", "Next layer", key_display="]", group=LAYER),
        Binding("left_square_bracket", "layer(-1)", "Previous layer", key_display="[", group=LAYER),
        Binding("full_stop", "head(1)", "Next head", key_display=".", group=HEAD),
        Binding("comma", "head(-1)", "Previous head", key_display=",", group=HEAD),
        Binding("e", "edit_prompt", "Edit prompt"),
        Binding("escape", "leave_prompt", "Back to the grid", show=False),
        # z zooms the grid here, so Z switches the knock-out mode
        *(replace(b, show=False) for b in ABLATION_BINDINGS if b.key != "z"),
        Binding("Z", "ablation_mode", "Knock-out mode: zero / mean over positions", show=False),
    ]
    DEFAULT_CSS = """
    InspectScreen .row { height: 1; padding: 0 1; }
    InspectScreen .row > Label { width: auto; padding-right: 1; color: $accent; text-style: bold; }
    InspectScreen #prompt { width: 1fr; }
    InspectScreen #body { height: 1fr; }
    InspectScreen #stages { width: 22; height: 1fr; border: none; border-right: solid $primary-darken-2;
                            scrollbar-size-vertical: 1; }
    InspectScreen #main { width: 1fr; padding: 0 0 0 1; }
    InspectScreen #stage-title { text-style: bold; color: $accent; }
    InspectScreen #formula { text-style: bold; }
    InspectScreen #description { color: $text-muted; }
    InspectScreen #split { height: 1fr; }
    InspectScreen Heatmap { max-height: 60%; }
    InspectScreen #explain-box { height: 1fr; min-height: 4; border-top: solid $primary-darken-2;
                                 scrollbar-size-vertical: 1; }
    InspectScreen.-wide #split { layout: horizontal; }
    InspectScreen.-wide Heatmap { max-height: 100%; max-width: 60%; }
    InspectScreen.-wide #explain-box { width: 1fr; height: 100%; border-top: none;
                                       border-left: solid $primary-darken-2; padding-left: 1; }
    InspectScreen .no-model { height: 1fr; }
    InspectScreen #ablation { height: auto; margin-bottom: 1; display: none; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.stages: list[Stage] = []
        self.index = 0  # position of the shown stage in self.stages
        self.explained = None  # the Explanation on screen, for tests
        self._explained_at: tuple[int, int, int] | None = None  # (row, col, wrap width) of the explanation
        self._listed: tuple | None = None  # (layer, stage count) the stage list shows

    def compose(self) -> ComposeResult:
        with Horizontal(classes="row", id="prompt-row"):
            yield Label("prompt")
            yield Input(
                compact=True, id="prompt", placeholder="type a prompt (ctrl+j: line break ⏎), enter to trace it"
            )
        yield Static(LOADING, classes="no-model")  # below the prompt, which stays in view when empty
        with Horizontal(id="body"):
            yield OptionList(id="stages")
            with Vertical(id="main"):
                yield Static(id="stage-title")
                yield Static(id="formula")
                yield Static(id="description")
                with Container(id="split"):  # grid above the explanation; side by side when wide
                    yield BlockHeatmap(id="grid")
                    with VerticalScroll(id="explain-box"):
                        yield Static(id="ablation")
                        yield Static(id="explain")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#stages", OptionList).can_focus = False  # keys belong to the grid; clicks still work

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width >= WIDE, "-wide")
        self.call_after_refresh(self._rewrap)
        if self.stages and self.state.trace is not None:
            self.call_after_refresh(self.show_stage)  # the grid's blocks are sized to the room

    # -- data ------------------------------------------------------------------------------------
    def redraw(self) -> None:
        """Show the snapshot: the same stage as before (in the shared layer), or a message."""
        session, ready = self.app.session, self.state.trace is not None
        self.query_one(".no-model", Static).update(self.message())
        self.query_one(".no-model").display = not ready
        self.query_one("#body").display = ready
        self.query_one("#prompt-row").display = session.model is not None and self.state.key is not None
        if not ready:
            return
        current = self.stages[self.index] if self.stages else Stage("tokenize")
        self.stages = all_stages(session.n_layer, self.attention)
        self.index = self._find(current.key, session.layer if current.layer is not None else None)
        self.show_stage()
        self.refresh_ablation()

    def _find(self, key: str, layer: int | None) -> int:
        for i, stage in enumerate(self.stages):
            if stage.key == key and stage.layer == layer:
                return i
        return 0

    @property
    def stage(self) -> Stage:
        return self.stages[self.index]

    @property
    def attention(self) -> bool:
        """Whether the traced model has attention (an MLP-only one has no attention stages)."""
        trace = self.state.trace
        return trace is None or "h.0.att" in trace

    def show_stage(self) -> None:
        """Draw the current stage: list, title, formula, grid; the grid's CellSelected fills the explanation."""
        session, stage, trace = self.app.session, self.stage, self.state.trace
        if stage.layer is not None:
            session.layer = stage.layer
        head = session.head
        view = stage_view(stage, trace, head, self.state.vocab)
        where = f" · layer {stage.layer} (0–{session.n_layer - 1})" if stage.layer is not None else ""
        heads = f" · head {head} (0–{session.n_head - 1})" if stage.per_head else ""
        self.query_one("#stage-title", Static).update(
            f"{stage.title}{where}{heads}  ({self.index + 1}/{len(self.stages)})"
        )
        self.query_one("#formula", Static).update(Text(stage.formula(trace.layer_norm_epsilon)))
        note = f" Prompt cropped to its last {len(trace.ids)} tokens." if self.state.cropped else ""
        if stage.layer is not None and not self.attention:
            note += f" {NO_ATTENTION} x₁ is the block's input x."
        self.query_one("#description", Static).update(f"{view.shape}: {stage.description}{note}")
        self._fill_stage_list()
        grid = self.query_one("#grid", BlockHeatmap)
        grid.show_matrix(
            view.values, view.row_labels, view.col_labels, kind=view.kind, mask=view.mask, max_cols=self._grid_room()
        )
        room = self.query_one("#main").content_size.width if self.size.width >= WIDEN_FROM else 0
        grid.widen_cells(room * 3 // 5 if self.has_class("-wide") else room)  # few columns: wider cells
        if stage.key == "chosen":  # start on the token the greedy choice picks
            grid.set_real_cursor(0, int(view.values[0].argmax()))
        self.explain_cell(*grid.real_cursor)

    def _grid_room(self) -> int:
        """How many cells wide the grid may be: wider matrices are shown in blocks."""
        width = self.query_one("#main").content_size.width or self.app.size.width - 24
        if self.has_class("-wide"):
            width = width * 3 // 5
        return max((width - 10) // 2, 8)

    def _fill_stage_list(self) -> None:
        """List the stages of the current layer (rebuilt only when the layer or model changes)."""
        stages_list = self.query_one("#stages", OptionList)
        layer = self.app.session.layer
        if self._listed == (layer, len(self.stages)):
            stages_list.highlighted = stages_list.get_option_index(f"stage-{self.index}")
            return
        self._listed = (layer, len(self.stages))
        options: list[Option | None] = []
        for i, stage in enumerate(self.stages):
            if stage.layer is not None and stage.layer != layer:
                continue
            if stage.key == layer_keys(self.attention)[0]:
                options.append(
                    Option(Text(f"─ layer {layer} (0–{self.app.session.n_layer - 1}) ─", style="dim"), disabled=True)
                )
                if not self.attention:
                    options.append(Option(Text("(MLP only)", style="italic"), disabled=True))
            options.append(Option(stage.title, id=f"stage-{i}"))
        stages_list.clear_options()
        stages_list.add_options(options)
        stages_list.highlighted = stages_list.get_option_index(f"stage-{self.index}")

    def explain_cell(self, row: int, col: int) -> None:
        """Fill the explanation panel for a cell of the current stage."""
        grid, stage = self.query_one("#grid", BlockHeatmap), self.stage
        rows, cols = grid.real_shape
        if not rows or row >= rows or col >= cols:
            return
        width = self._explain_width()
        expl = explain(
            stage,
            self.state.trace,
            self.state.params,
            row,
            col,
            self.app.session.head,
            vocab=self.state.vocab,
            width=width,
        )
        text = Text()
        if grid.rule_text():
            text.append(grid.rule_text() + "\n", style="italic dim")
        value = f"[{grid.real_row_label(row)}, {grid.real_col_label(col)}] = {grid.full[row, col]:.4f}\n"
        text.append(value, style="bold")
        text.append("\n".join(expl.lines))
        self.query_one("#explain", Static).update(text)
        self.explained, self._explained_at = expl, (row, col, width)
        self.call_after_refresh(self._rewrap)

    def _explain_width(self) -> int:
        return max(self.query_one("#explain-box").scrollable_content_region.width - 1, 40)

    def _rewrap(self) -> None:
        """Wrap the explanation again when the layout gave its panel another width (a new stage, a resize)."""
        if self._explained_at is not None and self._explained_at[2] != self._explain_width():
            self.explain_cell(*self._explained_at[:2])

    @on(Heatmap.CellSelected, "#grid")
    def _cell_selected(self, message: Heatmap.CellSelected) -> None:
        if self.stages and self.state.trace is not None:
            self.explain_cell(message.row, message.col)

    @on(OptionList.OptionSelected, "#stages")
    def _stage_clicked(self, message: OptionList.OptionSelected) -> None:
        if message.option_id:
            self.index = int(message.option_id.split("-")[1])
            self.show_stage()

    # -- actions ---------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """Stage, layer and head keys only make sense once there is a trace."""
        if action in ("stage", "layer", "head"):
            ready = self.state.trace is not None and bool(self.stages)
            return ready and (action != "head" or self.attention)
        if action in ("ablate", "which_parts"):
            return self.state.trace is not None
        return True

    def action_stage(self, delta: int) -> None:
        """Step forward or back through the forward pass."""
        self.index = max(0, min(self.index + delta, len(self.stages) - 1))
        self.show_stage()

    def action_layer(self, delta: int) -> None:
        """The same stage in the next or previous layer (or the layer's first stage)."""
        session = self.app.session
        session.select(layer=session.layer + delta)
        key = self.stage.key if self.stage.layer is not None else layer_keys(self.attention)[0]
        self.index = self._find(key, session.layer)
        self.show_stage()

    def action_head(self, delta: int) -> None:
        """Show the next or previous attention head."""
        session = self.app.session
        session.select(head=session.head + delta)
        self.show_stage()

    # -- knock-outs ------------------------------------------------------------------------------
    def ablations_changed(self) -> None:
        self.show_stage()  # the title names the layer and head the keys act on
        self.refresh_ablation()

    def show_ablation(self, text: Text | None) -> None:
        panel = self.query_one("#ablation", Static)
        panel.display = text is not None
        if text is not None:
            panel.update(text)

    def ablation_width(self) -> int:
        return max(self._explain_width(), 20)
