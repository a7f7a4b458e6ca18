"""Interventions on a screen: knock out the selected head, the layer's attention or its MLP by key and
see the next token and a continuation change (drawn with Generate's sampling settings, the same seed with
and without, so the two differ only where the change moved the odds); a table of which parts matter most."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Static
from textual.worker import get_current_worker

from ..screenshot import SAVE_SCREEN
from ..stages import NO_ATTENTION
from ..widgets.probbars import bar, display_token
from ..workers import background

TOP = 5  # next tokens listed with and without
CONTINUE = 8  # tokens of continuation shown with and without

ABLATION_BINDINGS = [
    Binding("a", "ablate('head')", "Knock out head"),
    Binding("A", "ablate('attn')", "Knock out the layer's attention (again: put it back)", show=False),
    Binding("m", "ablate('mlp')", "Knock out the layer's MLP", show=False),
    Binding("z", "ablation_mode", "Knock-out mode: zero / mean over positions", show=False),
    Binding("u", "clear_ablations", "Put every knocked-out part back", show=False),
    Binding("w", "which_parts", "Which heads matter"),
]


@dataclass
class AblationResult:
    """The next token and a continuation, without and with the knock-outs (the model's numbers)."""

    key: tuple  # (view snapshot key, ablations, forced tokens) it was computed for
    ablations: tuple
    forced: tuple  # ((position, token id), ...) replaced in the prompt
    before: np.ndarray  # (V,) next-token probabilities as the model is
    after: np.ndarray  # (V,) with the parts knocked out
    chosen: int  # the most likely next token as the model is
    continued_before: list[int]
    continued_after: list[int]
    sampling: str = "greedy"  # how the continuations were drawn ("greedy", "T=0.8 top-k=10 · seed 0")

    @property
    def delta(self) -> float:
        return float(self.after[self.chosen] - self.before[self.chosen])


def sampling_key(sampling) -> tuple | None:
    """The settings of a core Sampling as a hashable key (None: greedy)."""
    if sampling is None:
        return None
    return (sampling.temperature, sampling.top_k, sampling.top_p, sampling.greedy, sampling.seed)


def compute_ablation(model, ids: np.ndarray, key: tuple) -> AblationResult:
    """What the knock-outs (key[1]) and the forced tokens (key[2]) do to the prompt ids' next token
    and to a continuation drawn with the sampling settings key[3] (sampling_key; None: greedy)."""
    from tinylm.core import Intervention, Sampling, continuation, intervened_probs

    ablations, forced = key[1], key[2]
    sampling = Sampling(*key[3]) if len(key) > 3 and key[3] is not None else None
    label = "greedy" if sampling is None or sampling.greedy else f"{sampling.describe()} · seed {sampling.seed}"
    iv = Intervention(tuple(ablations), dict(forced))
    before = intervened_probs(model, ids)
    after = intervened_probs(model, ids, iv)
    return AblationResult(
        key,
        tuple(ablations),
        tuple(forced),
        before,
        after,
        int(np.argmax(before)),
        continuation(model, ids, CONTINUE, None, sampling),
        continuation(model, ids, CONTINUE, iv, sampling),
        label,
    )


def short_label(ablation) -> str:
    """'L1 H3', 'L1 attn', 'L1 mlp'."""
    a = ablation
    return f"L{a.layer} " + (f"H{a.head}" if a.part == "head" else a.part)


def ablation_text(result: AblationResult, tokenizer, width: int = 36, top: int = TOP, sampling: bool = True) -> Text:
    """The panel: what is knocked out, the top next tokens without -> with, the chosen token's change
    and the continuations."""
    label = lambda i: display_token(tokenizer.token_label(int(i)), 8)  # noqa: E731
    parts = ", ".join(short_label(a) for a in result.ablations)
    mode = result.ablations[0].mode if result.ablations else "zero"
    out = Text(no_wrap=True, overflow="crop")
    if result.ablations:
        out.append(f"Knocked out ({mode}): {parts}\n", style="bold")
    for pos, tok in result.forced:
        out.append(f"Token {pos} forced to {label(tok)}\n", style="bold")
    header = "next token   without → with"
    then = f" · then {result.sampling}" if sampling else ""
    fits = len(header) + len(then) <= width  # the continuations' sampling beside the header, else on its own line
    out.append(header + (then if fits else "") + "\n", style="dim")
    bar_w = max(width - 28, 3)
    for i in np.lexsort((np.arange(result.before.size), -result.before))[:top]:
        b, a = float(result.before[i]), float(result.after[i])
        out.append(f"{label(i):<8} {100 * b:5.1f}% → {100 * a:5.1f}% ")
        out.append(bar(a, bar_w) + "\n", style="bold yellow" if int(i) == result.chosen else "green")
    c = result.chosen
    out.append(f"p({label(c)}) {100 * result.before[c]:.1f}% → {100 * result.after[c]:.1f}% ", style="bold")
    out.append(f"({100 * result.delta:+.2f} points)\n", style="bold red" if result.delta < 0 else "bold green")
    text = lambda ids: display_token(tokenizer.decode(ids), width - 9)  # noqa: E731
    if not fits:
        out.append(f"then ({result.sampling}):\n", style="dim")
    out.append(f"as is:   {text(result.continued_before)}\n")
    out.append(f"changed: {text(result.continued_after)}")
    return out


class AblationControls:
    """Mixin for a screen with a prompt trace (self.state.trace) and the session's layer/head selection:
    keys knock parts out, a worker recomputes, `show_ablation(text or None)` draws the panel."""

    ablation_result: AblationResult | None = None

    def ablation_target(self, part: str):
        from tinylm.core import Ablation

        s = self.app.session
        return Ablation(s.layer, part, s.head if part == "head" else None, s.ablation_mode)

    def action_ablate(self, part: str) -> None:
        """Knock out (or put back) the selected head, the layer's attention or its MLP."""
        s = self.app.session
        if part != "mlp" and s.model is not None and not s.model.config.attention:
            self.app.notify(f"{NO_ATTENTION} Only its MLPs can be knocked out (m).", severity="warning")
            return
        target = self.ablation_target(part)
        same = [a for a in s.ablations if (a.layer, a.part, a.head) == (target.layer, target.part, target.head)]
        s.ablations = tuple(a for a in s.ablations if a not in same) + (() if same else (target,))
        self.ablations_changed()

    def action_ablation_mode(self) -> None:
        """Switch every knock-out between zero and the part's mean over the positions."""
        s = self.app.session
        s.ablation_mode = "mean" if s.ablation_mode == "zero" else "zero"
        s.ablations = tuple(replace(a, mode=s.ablation_mode) for a in s.ablations)
        self.app.notify(f"knock-outs now {'zero' if s.ablation_mode == 'zero' else 'the mean over positions'}")
        self.ablations_changed()

    def action_clear_ablations(self) -> None:
        self.app.session.ablations = ()
        self.app.session.forced_tokens = ("", {})
        self.ablations_changed()

    def ablations_changed(self) -> None:
        """Redraw what depends on the knock-outs (a screen may mark the parts too)."""
        self.refresh_ablation()

    def action_which_parts(self) -> None:
        """The table of every head, attention layer and MLP ranked by the change they make."""
        source = self.ablation_source()
        if source is not None:
            self.app.push_screen(RankScreen(source[1], self.app.session.ablation_mode))

    def ablation_source(self) -> tuple | None:
        """(what the numbers depend on: model, weights' version, text; the prompt's ids), or None."""
        trace = self.state.trace
        if trace is None or self.app.session.model is None:
            return None
        return self.state.key, trace.ids

    def forced(self) -> tuple:
        """((position, token id), ...) replaced in this screen's prompt; none by default."""
        return ()

    def refresh_ablation(self) -> None:
        """Recompute the panel for the current prompt and knock-outs (in a worker), or hide it."""
        s, source = self.app.session, self.ablation_source()
        forced = self.forced()
        if not (s.ablations or forced) or source is None:
            self.ablation_result = None
            self.show_ablation(None)
            return
        key = (source[0], tuple(s.ablations), forced, sampling_key(s.current_sampling()))
        if self.ablation_result is not None and self.ablation_result.key == key:
            self.show_ablation(self.ablation_panel(self.ablation_result))
            return
        self.show_ablation(Text("recomputing with the changes…", style="dim"))
        self.app.status = "ablating…"
        self._ablate_in_background(s.model, source[1], key)

    @background("ablation")
    def _ablate_in_background(self, model, ids, key) -> None:
        from tinylm.core import TinyLMError

        try:
            result = compute_ablation(model, ids, key)
        except TinyLMError as exc:
            result = exc
        if not get_current_worker().is_cancelled:
            try:
                self.app.call_from_thread(self._ablated, result)
            except RuntimeError:  # the app is closing
                pass

    def _ablated(self, result) -> None:
        if self.app.status == "ablating…":
            self.app.status = "ready"
        if isinstance(result, Exception):
            self.show_ablation(Text(str(result), style="red"))
            return
        self.ablation_result = result
        s = self.app.session
        source = self.ablation_source()
        if source is not None and result.key == (
            source[0],
            tuple(s.ablations),
            self.forced(),
            sampling_key(s.current_sampling()),
        ):
            self.show_ablation(self.ablation_panel(result))

    def ablation_width(self) -> int:
        return 36

    def ablation_panel(self, result: AblationResult) -> Text:
        return ablation_text(
            result,
            self.app.session.model.tokenizer,
            self.ablation_width(),
            self.ablation_top,
            self.ablation_says_sampling,
        )

    ablation_top = TOP  # next tokens the panel lists
    ablation_says_sampling = True  # the panel names the sampling settings its continuations are drawn with

    def show_ablation(self, text: Text | None) -> None:
        raise NotImplementedError


class RankScreen(ModalScreen[None]):
    """Every head, attention layer and MLP knocked out alone, ranked by the change in the chosen
    token's probability; computed in a worker, row by row progress in the title."""

    BINDINGS = [Binding("escape,w,q", "dismiss", "Close the table"), SAVE_SCREEN]
    DEFAULT_CSS = """
    RankScreen { align: center middle; }
    RankScreen > Vertical { width: 90%; max-width: 80; height: 90%; border: round $accent;
                            background: $surface; padding: 0 1; }
    RankScreen #rank-status { height: auto; }
    RankScreen DataTable { height: 1fr; }
    """

    def __init__(self, ids: np.ndarray, mode: str) -> None:
        super().__init__()
        self.ids, self.mode = np.array(ids), mode
        self.effects: list = []
        self.chosen: int | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Which parts matter: knocking out each alone…", id="rank-status")
            yield DataTable(id="rank-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("rank", "part", "p before", "p after", "change", "top then")
        self.app.status = "ranking parts…"
        self._rank(self.app.session.model)

    @background("rank")
    def _rank(self, model) -> None:
        from tinylm.core import rank_heads

        worker = get_current_worker()

        def progress(done: int, total: int) -> None:
            if done % 4 == 0 or done == total:
                self.app.call_from_thread(self._progress, done, total)

        effects = rank_heads(model, self.ids, mode=self.mode, cancelled=lambda: worker.is_cancelled, progress=progress)
        if not worker.is_cancelled:
            try:
                self.app.call_from_thread(self._ranked, effects, model.tokenizer)
            except RuntimeError:
                pass

    def _progress(self, done: int, total: int) -> None:
        self.query_one("#rank-status", Static).update(f"Which parts matter: knocked out {done} of {total}…")

    def _ranked(self, effects, tokenizer) -> None:
        if self.app.status == "ranking parts…":
            self.app.status = "ready"
        self.effects = effects
        table = self.query_one(DataTable)
        if not effects:
            return
        for rank, e in enumerate(effects, 1):
            table.add_row(
                str(rank),
                short_label(e.ablation),
                f"{e.p_before:.4f}",
                f"{e.p_after:.4f}",
                f"{e.delta:+.4f}",
                display_token(tokenizer.token_label(e.top_after), 10),
            )
        chosen = display_token(tokenizer.token_label(effects[0].token), 10)
        self.query_one("#rank-status", Static).update(
            f"Each part knocked out alone ({self.mode}); change in p({chosen}), the most likely next token, "
            "largest first. esc closes."
        )

    def action_dismiss(self) -> None:
        if self.app.status == "ranking parts…":
            self.app.status = "ready"
        self.workers.cancel_group(self, "rank")
        self.dismiss(None)


class ForceTokenScreen(ModalScreen[str | None]):
    """Asks for the token to put at one position of the prompt."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    ForceTokenScreen { align: center middle; }
    ForceTokenScreen > Vertical { width: 60; height: auto; border: round $accent; background: $surface;
                                  padding: 0 1; }
    """

    def __init__(self, position: int, current: str) -> None:
        super().__init__()
        self.position, self.current = position, current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Replace token {self.position} ('{self.current}') by (one token; enter: apply, esc: cancel)")
            yield Input(compact=True, id="force-token")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
