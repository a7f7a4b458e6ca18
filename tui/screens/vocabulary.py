"""Vocabulary: every token's embedding, the position table, and a PCA map where similar tokens sit close."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import ContentSwitcher, Input, Static
from textual.worker import get_current_worker

from ..embedding_map import find_token, nearest, pca_2d, unit_rows
from ..explain import wrap_numbers
from ..history_view import KEYS_HINT, embedding_maps, movement_line, scrub, scrub_bindings, scrubbed
from ..widgets.blockmap import BlockHeatmap, Prepared, prepare
from ..widgets.heatmap import Heatmap, visible
from ..widgets.scatter import Scatter
from ..workers import background
from .trace_view import TraceView
from .view_state import LOADING

__all__ = ["VocabularyScreen", "nearest", "pca_2d"]

QUICK_CELLS = 100_000  # up to this many embedding numbers the screen is drawn at once (an SVD); above, a worker
BUSY = "PCA…"


@dataclass
class Analysis:
    """What the screen shows for one set of weights: tables reduced to the room, PCA, unit rows for cosines."""

    key: tuple
    wte: np.ndarray  # (V, C)
    wpe: np.ndarray  # (T, C)
    labels: list[str]  # "id token" row labels
    tokens: Prepared
    positions: Prepared
    coords: np.ndarray  # (V, 2)
    explained: np.ndarray  # (2,)
    unit: np.ndarray  # (V, C) rows of length 1
    room: int


def analyse(key, wte, wpe, vocab, room: int, previous: Analysis | None = None) -> Analysis:
    """Everything the screen draws from the embeddings (the PCA is kept from `previous` for the same weights)."""
    tokens = prepare(wte, kind="signed", max_cols=room)
    positions = prepare(wpe, kind="signed", max_cols=room)
    if previous is not None and previous.key == key:
        coords, explained, unit, labels = previous.coords, previous.explained, previous.unit, previous.labels
    else:
        coords, explained = pca_2d(wte)
        unit, labels = unit_rows(wte), [f"{i:>4} {t}" for i, t in enumerate(vocab)]
    return Analysis(key, wte, wpe, labels, tokens, positions, coords, explained, unit, room)


class VocabularyScreen(TraceView):
    """Token and position embeddings as heatmaps, with a PCA map of the tokens and a search by token text."""

    AUTO_FOCUS = "#tokens"
    KEY_WIDGETS = (BlockHeatmap,)  # the grid, whose own keys the help lists with the screen's
    BINDINGS = [
        Binding("w", "toggle_table", "Tokens/positions"),
        Binding("slash", "find", "Find a token", key_display="/"),
        Binding("escape", "leave_find", "Back to the table", show=False),
        *scrub_bindings(),
    ]
    DEFAULT_CSS = """
    VocabularyScreen #vocab-title { height: auto; padding: 0 1; text-style: bold; color: $accent; }
    VocabularyScreen #vocab-title.-history { text-wrap: nowrap; text-overflow: ellipsis; }
    VocabularyScreen #vocab-body { height: 1fr; }
    VocabularyScreen #tables { width: auto; max-width: 55%; padding: 0 1; }
    VocabularyScreen #switcher { height: 1fr; width: auto; }
    VocabularyScreen #switcher > Heatmap { max-height: 100%; }
    VocabularyScreen #find { width: 100%; }
    VocabularyScreen #token-info { height: auto; max-height: 9; padding-top: 1; }
    VocabularyScreen #map-box { width: 1fr; border: round $primary-darken-1; padding: 0 1; }
    VocabularyScreen .no-model { height: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.drawn: tuple | None = None  # (model, version) the tables show
        self.analysis: Analysis | None = None
        self._shown_token: int | None = None  # the token whose details are on show
        self._analysing: tuple | None = None  # (key, room) a worker is computing
        self.wte = np.zeros((0, 0))
        self.wpe = np.zeros((0, 0))
        self.vocab: list[str] = []
        self.coords = np.zeros((0, 2))
        self.explained = np.zeros(2)
        self.history_drawn: int | None = None  # the history step the map shows; None: the live PCA

    def compose(self) -> ComposeResult:
        yield Static(LOADING, classes="no-model")
        yield Static(id="vocab-title")
        with Horizontal(id="vocab-body"):
            with Vertical(id="tables"):
                yield Input(compact=True, id="find", placeholder="a token's text, e.g. ' the'; enter: next match")
                with ContentSwitcher(initial="tokens", id="switcher"):
                    yield BlockHeatmap(id="tokens", narrow=True, label_width=10)
                    yield BlockHeatmap(id="positions", narrow=True, label_width=6)
                yield Static(id="token-info")
            with Vertical(id="map-box"):
                yield Scatter(id="map")

    def grid(self) -> Heatmap:
        return self.query_one(f"#{self.query_one('#switcher', ContentSwitcher).current}", Heatmap)

    def _room(self) -> int:
        """Cells a table row may take: the tables get up to 55% of the width, less padding and labels."""
        return max(int(self.app.size.width * 0.55) - 2 - 11, 8)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#find", Input).display = False  # until / asks for it

    def on_resize(self, event: events.Resize) -> None:
        if self.analysis is not None and self.analysis.room != self._room():
            self._start(self.analysis.key)

    def redraw(self) -> None:
        """Show the snapshot's embedding tables and their PCA map (recomputed only for new weights)."""
        model = self.app.session.model
        ready = model is not None and bool(self.state.params)
        self.query_one("#vocab-body").display = ready
        self.query_one("#vocab-title").display = ready
        self.query_one(".no-model", Static).update(self.message())
        self.query_one(".no-model").display = not ready
        if not ready:
            return
        if self.drawn == self.state.key[:2]:
            self.follow_history()
            return
        self._start(self.state.key[:2])

    def _start(self, key: tuple) -> None:
        """Analyse the snapshot's embeddings: at once when small, else in a worker with a status."""
        state, room = self.state, self._room()
        wte, wpe = state.params["transformer.wte.weight"], state.wpe
        if wte.size + wpe.size <= QUICK_CELLS:
            self.show_analysis(analyse(key, wte, wpe, state.vocab, room, self.analysis))
            return
        if self._analysing == (key, room):
            return
        self._analysing = (key, room)
        V, C = wte.shape
        if self.analysis is None or self.analysis.key != key:
            self.query_one("#vocab-title", Static).update(
                Text(f"Vocabulary: {V:,} tokens x C = {C}: computing the tables and the PCA map in the background…")
            )
        self.app.status = BUSY
        self._analyse(key, wte, wpe, state.vocab, room, self.analysis)

    @background("vocabulary")
    def _analyse(self, key, wte, wpe, vocab, room, previous) -> None:
        result = analyse(key, wte, wpe, vocab, room, previous)
        if not get_current_worker().is_cancelled:
            try:
                self.app.call_from_thread(self._analysed, result)
            except RuntimeError:  # the app is closing
                pass

    def _analysed(self, result: Analysis) -> None:
        if self._analysing == (result.key, result.room):
            self._analysing = None
            if self.app.status == BUSY:
                self.app.status = "ready"
        if self.state.key is not None and result.key == self.state.key[:2]:
            self.show_analysis(result)

    def show_analysis(self, result: Analysis) -> None:
        """Draw the tables, the title and the map from an analysis."""
        model = self.app.session.model
        self.analysis, self.drawn = result, result.key
        self.refresh_bindings()
        self.wte, self.wpe, self.vocab = result.wte, result.wpe, self.state.vocab
        self.coords, self.explained = result.coords, result.explained
        V, C = self.wte.shape
        pos_kind = "learned" if model.config.positional == "learned" else "fixed sine/cosine"
        self.query_one("#vocab-title", Static).update(
            Text.assemble(
                f"Vocabulary: {V:,} tokens ({model.tokenizer.kind} tokenizer), each a vector of C = {C} numbers\n",
                (
                    f"Map: PCA of the token embeddings, PC1 {100 * self.explained[0]:.1f}% and PC2 "
                    f"{100 * self.explained[1]:.1f}% of the variance · w: {pos_kind} position table · /: find",
                    "not bold dim",
                ),
            )
        )
        tokens = self.query_one("#tokens", BlockHeatmap)
        tokens.show_matrix(
            self.wte, result.labels, kind="signed", max_cols=result.room, prepared=result.tokens, escape=False
        )
        self.query_one("#positions", BlockHeatmap).show_matrix(
            self.wpe,
            [f"pos {t}" for t in range(len(self.wpe))],
            kind="signed",
            max_cols=result.room,
            prepared=result.positions,
            escape=False,
        )
        self.query_one("#map-box").border_title = "token embeddings, PCA"
        self.query_one("#map", Scatter).set_points(self.coords, self.vocab, tokens.real_cursor[0])
        self.query_one("#vocab-title").remove_class("-history")
        self.history_drawn = None
        if self.query_one("#switcher", ContentSwitcher).current == "tokens":
            self.show_token(tokens.real_cursor[0])
        self.follow_history()

    # -- the training history --------------------------------------------------------------------
    def follow_history(self) -> None:
        """Show the map of the history snapshot the session is scrubbed to, or the live one again."""
        at = scrubbed(self.app.session)
        if at is not None and self.analysis is not None:
            self.show_history_map(at)
        elif self.history_drawn is not None and self.analysis is not None:
            self.show_analysis(self.analysis)

    def show_history_map(self, at) -> None:
        """The snapshot's embedding map on the latest snapshot's principal axes (fixed, so tokens move rather than
        jump between snapshots), with the share of that step's variance on each axis and how far tokens moved."""
        maps = embedding_maps(at)
        k, reference = at.index, at.snapshots[maps.reference].step
        e = maps.explained[k]
        title = self.query_one("#vocab-title", Static)
        title.add_class("-history")
        shares = f"PC1 {100 * e[0]:.1f}% PC2 {100 * e[1]:.1f}%"
        numbers = f"{shares} of its variance · {movement_line(at)}"
        if len(numbers) > self.size.width - 2:  # the spread would be cut off: the shares go unexplained instead
            numbers = f"{shares} · {movement_line(at)}"
        title.update(
            Text.assemble(
                (f"History · {at.where}", "magenta"),
                f" · map on the axes of step {reference} · {KEYS_HINT}\n",
                (numbers, "not bold"),
            )
        )
        self.query_one("#map-box").border_title = f"step {at.step} on step {reference}'s axes"
        n = len(at.recorder.map_ids)
        cursor = self.query_one("#tokens", BlockHeatmap).real_cursor[0]
        self.query_one("#map", Scatter).set_points(maps.coords[k], self.vocab[:n], cursor if cursor < n else None)
        self.history_drawn = at.step
        if self.query_one("#switcher", ContentSwitcher).current == "tokens":
            self.show_token(cursor)

    def action_scrub(self, delta: int) -> None:
        """Show the embedding map at the previous or next snapshot of the training history (past the latest: live)."""
        message = scrub(self.app.session, delta)
        if message:
            self.notify(message)
        self.follow_history()

    def action_live(self) -> None:
        """Leave the history: the live PCA map again."""
        self.app.session.history_step = None
        self.follow_history()

    def show_token(self, index: int, closest: list | None = None) -> None:
        """Details of one token: id, text, its embedding's numbers, PCA position, nearest tokens (for a
        large table found in a worker: 50,257 cosines take tens of milliseconds, more on a busy machine)."""
        if self.analysis is None or not len(self.wte):
            return
        width = max(self.query_one("#token-info").size.width - 1, 36)
        at = scrubbed(self.app.session)
        if at is not None:
            self.show_history_token(at, index, width)
            return
        if closest is None and self.wte.size <= QUICK_CELLS:
            closest = nearest(self.wte, index, unit=self.analysis.unit)
        elif closest is None:
            self._find_closest(index, self.analysis)
        near = "…" if closest is None else ", ".join(f"'{self.vocab[j]}' {s:.2f}" for j, s in closest)
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
        self._shown_token = index
        self.query_one("#map", Scatter).set_highlight(index)

    @background("closest")
    def _find_closest(self, index: int, analysis) -> None:
        closest = nearest(analysis.unit, index, unit=analysis.unit)
        if not get_current_worker().is_cancelled:
            try:
                self.app.call_from_thread(self._found_closest, index, analysis, closest)
            except RuntimeError:  # the app is closing
                pass

    def _found_closest(self, index: int, analysis, closest: list) -> None:
        if analysis is self.analysis and self._shown_token == index:  # still the token on show
            self.show_token(index, closest)

    def show_history_token(self, at, index: int, width: int) -> None:
        """A token at the scrubbed snapshot: where it is on that snapshot's map and its embedding then."""
        text = Text()
        n = len(at.recorder.map_ids)
        if index >= n:
            text.append(f"id {index} '{visible(self.vocab[index])}' is not on the history's map (ids 0–{n - 1})")
        else:
            x, y = embedding_maps(at).coords[at.index][index]
            text.append(
                f"id {index} '{visible(self.vocab[index])}' at step {at.step}  map ({x:+.3f}, {y:+.3f})\n", style="bold"
            )
            lines = wrap_numbers("wte =", at.snapshot.embedding[index], width)
            room = max(2, self.app.size.height // 2 - 10)
            text.append("\n".join(lines[:room]))
        self.query_one("#token-info", Static).update(text)
        self.query_one("#map", Scatter).set_highlight(index if index < n else None)

    def show_position(self, index: int) -> None:
        if self.analysis is None or index >= len(self.wpe):
            return
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

    # -- finding a token by its text -------------------------------------------------------------
    def action_find(self) -> None:
        """Type a token's text; the table jumps to the first token that is, starts with or contains it."""
        switcher = self.query_one("#switcher", ContentSwitcher)
        if switcher.current != "tokens":
            self.action_toggle_table()
        field = self.query_one("#find", Input)
        field.display = True  # at once (a class would apply on the next refresh, too late for set_focus)
        self.set_focus(field)

    def action_leave_find(self) -> None:
        self.query_one("#find", Input).display = False
        self.set_focus(self.query_one("#tokens", BlockHeatmap))

    @on(Input.Changed, "#find")
    def _find_changed(self, message: Input.Changed) -> None:
        self.find(message.value)

    @on(Input.Submitted, "#find")
    def _find_next(self, message: Input.Submitted) -> None:
        self.find(message.value, after=self.query_one("#tokens", BlockHeatmap).real_cursor[0])

    def find(self, query: str, after: int | None = None) -> int | None:
        """Move the table's cursor to the token `query` finds (the next match after `after`); says so when none does."""
        if self.analysis is None or not query:
            return None
        found = find_token(self.vocab, query, after)
        if found is None:
            self.query_one("#token-info", Static).update(Text(f"no token is, starts with or contains {query!r}"))
            return None
        tokens = self.query_one("#tokens", BlockHeatmap)
        tokens.set_real_cursor(found, tokens.real_cursor[1])
        return found

    # -- actions ---------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in ("toggle_table", "find"):
            return self.analysis is not None
        return True

    def action_toggle_table(self) -> None:
        """Switch the table between token embeddings (wte) and position embeddings (wpe)."""
        switcher = self.query_one("#switcher", ContentSwitcher)
        switcher.current = "positions" if switcher.current == "tokens" else "tokens"
        grid = self.query_one(f"#{switcher.current}", BlockHeatmap)
        self.set_focus(grid)  # at once (widget.focus() is deferred; a key typed next would reach the hidden grid)
        if switcher.current == "tokens":
            self.show_token(grid.real_cursor[0])
        else:
            self.query_one("#find", Input).display = False
            self.show_position(grid.real_cursor[0])
