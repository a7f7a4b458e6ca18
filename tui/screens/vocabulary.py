"""Vocabulary: every token's embedding, the position table, and a PCA map where similar tokens sit close."""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import ContentSwitcher, Static

from ..explain import wrap_numbers
from ..widgets.heatmap import Heatmap, visible
from ..widgets.scatter import Scatter
from .trace_view import TraceView
from .view_state import LOADING


def pca_2d(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of each row on the first two principal axes, and the share of variance each explains."""
    x = table.astype(np.float64)
    x = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    axes = vt[:2]
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
    axes = axes * np.where(signs == 0, 1.0, signs)[:, None]  # largest loading positive: the same picture every time
    coords = x @ axes.T
    if coords.shape[1] < 2:
        coords = np.hstack([coords, np.zeros((len(x), 2 - coords.shape[1]))])
    total = float((s**2).sum())
    explained = (s[:2] ** 2) / total if total > 0 else np.zeros(2)
    return coords, np.pad(explained, (0, 2 - len(explained)))


def nearest(table: np.ndarray, index: int, k: int = 5) -> list[tuple[int, float]]:
    """The k rows most similar (cosine) to row `index`."""
    x = table.astype(np.float64)
    norms = np.linalg.norm(x, axis=1)
    sims = x @ x[index] / np.maximum(norms * norms[index], 1e-12)
    sims[index] = -np.inf
    order = np.argsort(-sims, kind="stable")[:k]
    return [(int(i), float(sims[i])) for i in order]


class VocabularyScreen(TraceView):
    """Token and position embeddings as heatmaps, with a PCA map of the tokens."""

    AUTO_FOCUS = "#tokens"
    BINDINGS = [Binding("w", "toggle_table", "Tokens/positions")]
    DEFAULT_CSS = """
    VocabularyScreen #vocab-title { height: auto; padding: 0 1; text-style: bold; color: $accent; }
    VocabularyScreen #vocab-body { height: 1fr; }
    VocabularyScreen #tables { width: auto; max-width: 55%; padding: 0 1; }
    VocabularyScreen #switcher { height: 1fr; width: auto; }
    VocabularyScreen #switcher > Heatmap { max-height: 100%; }
    VocabularyScreen #token-info { height: auto; max-height: 9; padding-top: 1; }
    VocabularyScreen #map-box { width: 1fr; border: round $primary-darken-1; padding: 0 1; }
    VocabularyScreen .no-model { height: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.drawn: tuple | None = None  # (model, version) the tables show
        self.wte = np.zeros((0, 0))
        self.wpe = np.zeros((0, 0))
        self.vocab: list[str] = []
        self.coords = np.zeros((0, 2))
        self.explained = np.zeros(2)

    def compose(self) -> ComposeResult:
        yield Static(LOADING, classes="no-model")
        yield Static(id="vocab-title")
        with Horizontal(id="vocab-body"):
            with Vertical(id="tables"):
                with ContentSwitcher(initial="tokens", id="switcher"):
                    yield Heatmap(id="tokens", narrow=True, label_width=10)
                    yield Heatmap(id="positions", narrow=True, label_width=6)
                yield Static(id="token-info")
            with Vertical(id="map-box"):
                yield Scatter(id="map")

    def grid(self) -> Heatmap:
        return self.query_one(f"#{self.query_one('#switcher', ContentSwitcher).current}", Heatmap)

    def redraw(self) -> None:
        """Show the snapshot's embedding tables and their PCA map (recomputed only for new weights)."""
        model = self.app.session.model
        ready = model is not None and bool(self.state.params)
        for selector in ("#vocab-title", "#vocab-body"):
            self.query_one(selector).display = ready
        self.query_one(".no-model", Static).update(self.message())
        self.query_one(".no-model").display = not ready
        if not ready:
            return
        if self.drawn == self.state.key[:2]:
            return
        self.drawn = self.state.key[:2]
        self.wte = self.state.params["transformer.wte.weight"]
        self.wpe = self.state.wpe
        self.vocab = self.state.vocab
        tok = model.tokenizer
        self.coords, self.explained = pca_2d(self.wte)
        V, C = self.wte.shape
        pos_kind = "learned" if model.config.positional == "learned" else "fixed sine/cosine"
        self.query_one("#vocab-title", Static).update(
            Text.assemble(
                f"Vocabulary: {V} tokens ({tok.kind} tokenizer), each a vector of C = {C} numbers\n",
                (
                    f"Map: PCA of the token embeddings, PC1 {100 * self.explained[0]:.1f}% and PC2 "
                    f"{100 * self.explained[1]:.1f}% of the variance · w: {pos_kind} position table",
                    "not bold dim",
                ),
            )
        )
        tokens = self.query_one("#tokens", Heatmap)
        tokens.set_data(
            self.wte, [f"{i:>4} {visible(t)}" for i, t in enumerate(self.vocab)], kind="signed", escape=False
        )
        self.query_one("#positions", Heatmap).set_data(
            self.wpe, [f"pos {t}" for t in range(len(self.wpe))], kind="signed", escape=False
        )
        self.query_one("#map-box").border_title = "token embeddings, PCA"
        self.query_one("#map", Scatter).set_points(self.coords, [visible(t) for t in self.vocab], tokens.cursor[0])
        self.show_token(tokens.cursor[0])

    def show_token(self, index: int) -> None:
        """Details of one token: id, text, its embedding's numbers, PCA position, nearest tokens."""
        if not len(self.wte):
            return
        width = max(self.query_one("#token-info").size.width - 1, 36)
        near = ", ".join(f"'{visible(self.vocab[j])}' {s:.2f}" for j, s in nearest(self.wte, index))
        x, y = self.coords[index]
        text = Text()
        text.append(f"id {index} '{visible(self.vocab[index])}'  PCA ({x:+.3f}, {y:+.3f})\n", style="bold")
        lines = wrap_numbers("wte =", self.wte[index], width)
        room = max(2, self.app.size.height // 2 - 10)  # at 80x24 two lines; a tall terminal shows them all
        if len(lines) > room:
            shown = sum(line.count(".") for line in lines[:room])
            lines = lines[:room] + [f"      … {len(self.wte[index]) - shown} more (← → along the row)"]
        text.append("\n".join(lines) + "\n")
        text.append(f"closest (cosine): {near}")
        self.query_one("#token-info", Static).update(text)
        self.query_one("#map", Scatter).set_highlight(index)

    def show_position(self, index: int) -> None:
        width = max(self.query_one("#token-info").size.width - 1, 36)
        text = Text()
        text.append(f"position {index}\n", style="bold")
        text.append("\n".join(wrap_numbers("wpe =", self.wpe[index], width)))
        self.query_one("#token-info", Static).update(text)

    @on(Heatmap.CellSelected, "#tokens")
    def _token_selected(self, message: Heatmap.CellSelected) -> None:
        self.show_token(message.row)

    @on(Heatmap.CellSelected, "#positions")
    def _position_selected(self, message: Heatmap.CellSelected) -> None:
        if self.query_one("#switcher", ContentSwitcher).current == "positions":
            self.show_position(message.row)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        return self.app.session.model is not None if action == "toggle_table" else True

    def action_toggle_table(self) -> None:
        """Switch the table between token embeddings (wte) and position embeddings (wpe)."""
        switcher = self.query_one("#switcher", ContentSwitcher)
        switcher.current = "positions" if switcher.current == "tokens" else "tokens"
        grid = self.query_one(f"#{switcher.current}", Heatmap)
        self.set_focus(grid)  # at once (widget.focus() is deferred; a key typed next would reach the hidden grid)
        if switcher.current == "tokens":
            self.show_token(grid.cursor[0])
        else:
            self.show_position(grid.cursor[0])
