"""Attention: every head of a layer as a thumbnail, one head large, and what the cursor's token attends to."""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Label, Static

from ..history_view import KEYS_HINT, Scrubbed, layer_line, scrub, scrub_bindings, scrubbed
from ..stages import NO_ATTENTION
from ..tokens import token_labels
from ..widgets.heatmap import Heatmap, visible
from .ablation import ABLATION_BINDINGS, AblationControls, ForceTokenScreen
from .inspect import HEAD, LAYER, WIDEN_FROM
from .trace_view import TraceView
from .view_state import LOADING


def attends_to(weights: np.ndarray, tokens: list[str], row: int, top: int = 5) -> str:
    """'tok attends to: a (0.41), b (0.22) …' for one row of attention weights, largest first."""
    visible_part = weights[row, : row + 1]
    order = np.argsort(-visible_part, kind="stable")[:top]
    items = ", ".join(f"'{visible(tokens[j])}' ({visible_part[j]:.2f})" for j in order)
    more = f", … {row + 1 - top} more" if row + 1 > top else ""
    return f"'{visible(tokens[row])}' (position {row}) attends to: {items}{more}"


def pool(weights: np.ndarray, mask: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of each factor x factor block over its visible cells (a thumbnail of a long prompt).

    A block is masked only when every cell in it is masked, so the causal triangle stays visible.
    """
    if factor <= 1:
        return weights, mask
    n = -(-weights.shape[0] // factor)
    pad = n * factor - weights.shape[0]
    w = np.pad(weights, ((0, pad), (0, pad))).reshape(n, factor, n, factor)
    m = np.pad(mask, ((0, pad), (0, pad)), constant_values=True).reshape(n, factor, n, factor)
    count = (~m).sum(axis=(1, 3))
    mean = np.where(m, 0.0, w).sum(axis=(1, 3)) / np.maximum(count, 1)
    return mean, count == 0


class MapRoom(Vertical):
    """The big map's column; says when its size changes (a draw before the first layout waits for it)."""

    class Resized(Message):
        pass

    def on_resize(self, event: events.Resize) -> None:
        self.post_message(self.Resized())


class AttentionScreen(AblationControls, TraceView):
    """Attention weights of the selected layer: all heads small, the selected head large."""

    AUTO_FOCUS = "#big"
    GRID = "#big"
    KEY_WIDGETS = (Heatmap,)  # the grid, whose own keys the help lists with the screen's
    BINDINGS = [
        Binding("right_square_bracket", "layer(1)", "Next layer", key_display="]", group=LAYER),
        Binding("left_square_bracket", "layer(-1)", "Previous layer", key_display="[", group=LAYER),
        Binding("full_stop", "head(1)", "Next head", key_display=".", group=HEAD),
        Binding("comma", "head(-1)", "Previous head", key_display=",", group=HEAD),
        Binding("e", "edit_prompt", "Edit prompt"),
        Binding("escape", "leave_prompt", "Back to the grid", show=False),
        *ABLATION_BINDINGS,
        Binding("t", "force_token", "Replace the cursor row's token", show=False),
        *scrub_bindings(show=False),
    ]
    DEFAULT_CSS = """
    AttentionScreen .row { height: 1; padding: 0 1; }
    AttentionScreen .row > Label { width: auto; padding-right: 1; color: $accent; text-style: bold; }
    AttentionScreen #prompt { width: 1fr; }
    AttentionScreen #att-title { height: auto; padding: 0 1; text-style: bold; color: $accent; }
    AttentionScreen #att-title.-history { text-wrap: nowrap; text-overflow: ellipsis; }
    AttentionScreen #att-body { height: 1fr; }
    AttentionScreen #left { width: auto; max-width: 60%; padding: 0 1; }
    AttentionScreen #big { max-height: 100%; }
    AttentionScreen #attends { height: auto; max-height: 3; color: $text; }
    AttentionScreen #heads-box { width: 1fr; border-left: solid $primary-darken-2; padding: 0 1;
                                 scrollbar-size-vertical: 1; }
    AttentionScreen #heads { grid-size: 2; grid-gutter: 0 2; height: auto; grid-rows: auto; grid-columns: auto; }
    AttentionScreen .thumb { height: auto; width: auto; }
    AttentionScreen .thumb > Label { color: $text-muted; }
    AttentionScreen .thumb.-selected > Label { color: $accent; text-style: bold reverse; }
    AttentionScreen .no-model { height: 1fr; }
    AttentionScreen #ablation { height: auto; margin-bottom: 1; display: none; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._heads_of: tuple | None = None  # (n_head, model) the thumbnails were built for
        self.thumbs: list[tuple[Vertical, Heatmap]] = []  # (labelled box, small map) per head
        self.thumb_labels: list[Label] = []
        self._waiting_for_room = False  # a show() is due once the map's column has a size

    def compose(self) -> ComposeResult:
        with Horizontal(classes="row", id="prompt-row"):
            yield Label("prompt")
            yield Input(
                compact=True, id="prompt", placeholder="type a prompt (ctrl+j: line break ⏎), enter to trace it"
            )
        yield Static(LOADING, classes="no-model")  # below the prompt, which stays in view when empty
        yield Static(id="att-title")
        with Horizontal(id="att-body"):
            with MapRoom(id="left"):
                yield Static(id="attends")  # above the map, so a tall map never pushes it off screen
                yield Heatmap(id="big")
            with VerticalScroll(id="heads-box"):
                yield Static(id="ablation")
                yield Static("All heads (. , or a click)", classes="hint")
                yield Grid(id="heads")

    def on_resize(self, event: events.Resize) -> None:
        if self.state.trace is not None:
            self.call_after_refresh(self.show)  # thumbnails are scaled to the room the new layout leaves

    # -- data ------------------------------------------------------------------------------------
    def redraw(self) -> None:
        """Show the snapshot, or a message when there is nothing to show."""
        session, at = self.app.session, self.history_at()
        ready = self.state.trace is not None or (at is not None and self.state.key is not None)
        ready = ready and self.has_attention()
        self.query_one(".no-model", Static).update(self.message())
        self.query_one(".no-model").display = not ready
        # scrubbing shows the history's probe, not the prompt
        self.query_one("#prompt-row").display = session.model is not None and self.state.key is not None and not at
        self.query_one("#att-title").display = ready
        self.query_one("#att-body").display = ready
        if ready:
            self.show()

    def history_at(self) -> Scrubbed | None:
        """The history snapshot scrubbed to (its probe's maps are shown), or None: the live prompt's trace."""
        return scrubbed(self.app.session)

    def has_attention(self) -> bool:
        """Whether the model has attention maps to draw (an MLP-only one has none; no model: the usual message)."""
        model = self.app.session.model
        return model is None or model.config.attention

    def message(self) -> str:
        if not self.has_attention():
            return (
                f"{NO_ATTENTION}\n\nIt was created with attention off (the Config screen's switch, or "
                "`tinylm train --no-attention`): its blocks are LayerNorm and MLP only, shown on Inspect. "
                "Train the same model with attention on and overlay both loss curves on Training to see "
                "what attention adds."
            )
        return super().message()

    def weights(self, layer: int) -> np.ndarray:
        at = self.history_at()
        if at is not None:
            return at.snapshot.attention[layer]  # (NH, P, P) of the history's probe
        return self.state.trace[f"h.{layer}.att"]  # (NH, T, T)

    def shown_tokens(self) -> list[str]:
        """The labels of the tokens on the maps: the prompt's, or the history probe's while scrubbing."""
        at = self.history_at()
        if at is None:
            return self.state.trace.tokens
        return token_labels(self.app.session.model.tokenizer, at.recorder.probe_ids)

    def show(self) -> None:
        """Draw the selected layer: the big head, the thumbnails and the attends-to line. Before the screen is
        laid out (its room unknown) it is drawn when the room arrives (MapRoom.Resized): asking again after
        every refresh kept the CPU busy and the keys deaf on a terminal too small ever to give it room."""
        if not self.has_attention():
            return  # the message says why there is nothing to draw
        session, at, tokens = self.app.session, self.history_at(), self.shown_tokens()
        layer, head = session.layer, session.head
        att = self.weights(layer)
        T = att.shape[1]
        mask = np.triu(np.ones((T, T), dtype=bool), 1)
        where = f"layer {layer} (0–{session.n_layer - 1}) · head {head} (0–{session.n_head - 1})"
        if at is None:
            title = Text.assemble(
                f"Attention weights · {where}\n",
                (
                    "Each row is a token looking back at the tokens before it (columns); its weights sum to 1.",
                    "not bold dim",
                ),
            )
        else:  # what each head of this layer does on the probe, computed from these maps
            title = Text.assemble(
                (f"History · {at.where}", "magenta"),
                f" · {where} · {KEYS_HINT}\n",
                (layer_line(att, head, self.size.width - 2), "not bold"),
            )
        widget = self.query_one("#att-title", Static)
        widget.set_class(at is not None, "-history")  # one line each, cut at the edge
        widget.update(title)
        big = self.query_one("#big", Heatmap)
        left_height = self.query_one("#left").size.height
        self._waiting_for_room = left_height == 0
        if self._waiting_for_room:
            return
        room_lines = max(left_height - 3, 3)  # the attends-to lines keep 3
        big.styles.max_height = room_lines
        big.set_data(att[head], tokens, tokens, kind="prob", mask=mask, vmin=0.0, vmax=1.0)
        # On a large terminal the big map may take three fifths of the width and its rows grow taller with
        # the cells; at 80 columns the thumbnails need the room beside it, so cells stay two columns wide.
        wide = self.size.width >= WIDEN_FROM
        big.widen_cells(self.size.width * 3 // 5 - 2 if wide else 0, room_lines if wide else 0)
        self._build_thumbnails(att.shape[0])
        room = self.query_one("#heads-box").scrollable_content_region.width
        factor = -(-T // max(room, 8)) if room else 1  # whole blocks, so a long prompt's thumbnail still fits
        for h, (thumb, small) in enumerate(self.thumbs):
            mean, blocks_masked = pool(att[h], mask, factor)
            small.set_data(mean, kind="prob", mask=blocks_masked, vmin=0.0, vmax=1.0)
            thumb.set_class(h == head, "-selected")
            out = any(a.part == "head" and (a.layer, a.head) == (layer, h) for a in session.ablations)
            self.thumb_labels[h].update(
                f"head {h}" + (" ✗" if out else "") + (f" ({factor}x{factor} mean)" if factor > 1 else "")
            )
        self._fit_grid(-(-T // factor))
        self.update_attends(big.cursor[0])
        if at is None:
            self.refresh_ablation()
        else:  # knock-outs act on the live model, not on a snapshot
            self.show_ablation(None)

    @on(MapRoom.Resized)
    def _room_arrived(self) -> None:
        if self._waiting_for_room and self.query_one("#left").size.height > 0:
            self.show()

    def forced(self) -> tuple:
        prompt, tokens = self.app.session.forced_tokens
        return tuple(sorted(tokens.items())) if prompt == self.app.session.prompt else ()

    def action_force_token(self) -> None:
        """Put another token at the cursor row's position (the panel shows what changes)."""
        trace = self.state.trace
        if trace is None:
            return
        row = self.query_one("#big", Heatmap).cursor[0]

        def apply(text: str | None) -> None:
            if not text:
                return
            ids = self.app.session.model.tokenizer.encode(text)
            if len(ids) != 1:
                self.app.notify(f"{text!r} is {len(ids)} tokens: type text that is one token", severity="error")
                return
            session = self.app.session
            prompt, tokens = session.forced_tokens
            tokens = dict(tokens) if prompt == session.prompt else {}
            tokens[int(row)] = int(ids[0])
            session.forced_tokens = (session.prompt, tokens)
            self.ablations_changed()

        self.app.push_screen(ForceTokenScreen(int(row), visible(trace.tokens[row])), apply)

    def ablations_changed(self) -> None:
        self.show()  # the thumbnails mark the knocked-out heads; show() recomputes the panel

    def show_ablation(self, text: Text | None) -> None:
        panel = self.query_one("#ablation", Static)
        panel.display = text is not None
        if text is not None:
            panel.update(text)

    def ablation_width(self) -> int:
        return max(self.query_one("#heads-box").scrollable_content_region.width, 20)

    def _build_thumbnails(self, n_head: int) -> None:
        key = (n_head, self.state.key[0])
        if key == self._heads_of:
            return
        self._heads_of = key
        grid = self.query_one("#heads", Grid)
        grid.remove_children()
        self.thumbs, self.thumb_labels = [], []
        for h in range(n_head):
            small = Heatmap(compact=True, show_status=False, show_labels=False, show_cursor=False, name=str(h))
            small.can_focus = False  # arrows belong to the big map
            label = Label(f"head {h}")
            self.thumbs.append((Vertical(label, small, classes="thumb"), small))
            self.thumb_labels.append(label)
        grid.mount_all(thumb for thumb, _ in self.thumbs)

    def _fit_grid(self, size: int) -> None:
        """As many thumbnail columns (each `size` cells wide) as fit beside the big map."""
        width = self.query_one("#heads-box").scrollable_content_region.width
        self.query_one("#heads", Grid).styles.grid_size_columns = max(
            1, min(self.app.session.n_head, (width + 2) // (max(size, 6) + 2))
        )

    def update_attends(self, row: int) -> None:
        att = self.weights(self.app.session.layer)[self.app.session.head]
        tokens = self.shown_tokens()
        self.query_one("#attends", Static).update(Text(attends_to(att, tokens, min(row, len(tokens) - 1))))

    @on(Heatmap.CellSelected, "#big")
    def _cell_selected(self, message: Heatmap.CellSelected) -> None:
        if self.state.trace is not None or self.history_at() is not None:
            self.update_attends(message.row)

    def on_click(self, event: events.Click) -> None:
        """A click on a thumbnail (or its label) shows that head large."""
        for head, (thumb, small) in enumerate(self.thumbs):
            if event.widget is small or event.widget is thumb or event.widget in thumb.children:
                self.app.session.select(head=head)
                self.show()
                return

    # -- actions ---------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if not self.has_attention():
            if action in ("layer", "head", "ablate", "which_parts", "force_token"):
                return False
        if action in ("layer", "head"):
            return self.state.trace is not None or self.history_at() is not None
        if action in ("ablate", "which_parts", "force_token"):
            return self.state.trace is not None and self.history_at() is None
        return True

    def action_layer(self, delta: int) -> None:
        """Show the next or previous layer."""
        self.app.session.select(layer=self.app.session.layer + delta)
        self.show()

    def action_head(self, delta: int) -> None:
        """Show the next or previous head large."""
        self.app.session.select(head=self.app.session.head + delta)
        self.show()

    def action_scrub(self, delta: int) -> None:
        """Show the probe's maps at the previous or next snapshot of the training history (past the latest: live)."""
        message = scrub(self.app.session, delta)
        if message:
            self.notify(message)
        self.redraw()
        self.refresh_bindings()

    def action_live(self) -> None:
        """Leave the history: the prompt's maps with the current weights again."""
        self.app.session.history_step = None
        self.redraw()
        self.refresh_bindings()
