"""The KV cache as it fills: which rows hold keys and values, the bytes, the row the last token
wrote, and per token the work done with the cache against recomputing the whole prefix."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static
from textual.worker import get_current_worker

from ..screenshot import SAVE_SCREEN
from ..widgets.probbars import display_token
from ..workers import background

SHOWN_STEPS = 6  # latest steps listed
BURST = 8  # tokens appended by the space key
MAX_GRID_ROWS = 8  # more layers than this many rows' worth: one row per layer for K and V


def fmt_flops(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return f"{n:.0f}"


def fmt_bytes(n: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def fmt_s(s: float) -> str:
    return f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def cache_grid(watch, width: int) -> Text:
    """Rows: each layer's K and V; columns: positions (several per character when the context is
    wider than the room). █ filled, ▒ the row the last token wrote (bold), · empty."""
    cfg = watch.config
    if not cfg.attention:
        return Text("no attention (MLP only): no keys or values, so the cache stays empty\n", style="italic")
    T, filled = cfg.block_size, watch.length
    last = watch.steps[-1].row if watch.steps else None
    room = max(width - 8, 8)
    per = -(-T // room)  # positions per character
    cols = -(-T // per)
    split = 2 * cfg.n_layer <= MAX_GRID_ROWS  # K and V on rows of their own when they fit
    rows = (
        [(l, kv) for l in range(cfg.n_layer) for kv in ("K", "V")] if split else [(l, "KV") for l in range(cfg.n_layer)]
    )
    out = Text(no_wrap=True, overflow="crop")
    out.append(
        f"positions 0..{T - 1}"
        + (f", {per} per character" if per > 1 else "")
        + ("" if split else "; a row: a layer's K and V")
        + "\n",
        style="dim",
    )
    for l, kv in rows:
        out.append(f"L{l:<2} {kv:<2} ", style="bold")
        for c in range(cols):
            lo, hi = c * per, min((c + 1) * per, T)
            if last is not None and lo <= last < hi:
                out.append("▒", style="bold yellow")
            elif lo < filled:
                out.append("█", style="green")
            else:
                out.append("·", style="dim")
        out.append("\n")
    return out


def summary(watch) -> Text:
    cfg = watch.config
    out = Text()
    if not cfg.attention:
        out.append(
            "This model has no attention (MLP only): a token's logits need its own token and position "
            "alone, so there is nothing to cache; a step runs the new token's blocks, a recompute all of them.\n",
            style="bold",
        )
    out.append(
        f"{watch.length}/{cfg.block_size} positions, {cfg.n_layer} layers × K,V × {cfg.n_head}×{cfg.head_size}: "
        f"{fmt_bytes(watch.bytes_used)} / {fmt_bytes(watch.bytes_total)}\n",
        style="bold",
    )
    out.append(
        f"prefill of the prompt ({watch.prompt_length} tokens at once): "
        f"{fmt_flops(watch.prefill_flops)} FLOPs, {fmt_s(watch.prefill_s)}\n"
    )
    return out


def steps_table(watch, tokenizer) -> Text:
    out = Text(no_wrap=True, overflow="crop")
    if not watch.steps:
        out.append("n: append the most likely token and measure the step", style="dim")
        return out
    out.append("token     row  FLOPs: cache  recompute   time: cache  recompute\n", style="bold")
    for s in watch.steps[-SHOWN_STEPS:]:
        tok = display_token(tokenizer.token_label(s.token), 8)
        if s.rebuilt:
            out.append(
                f"{tok:<8} context full: dropped the {s.dropped} oldest tokens, rebuilt the cache "
                f"from {s.length} ({fmt_flops(s.cached_flops)} FLOPs, {fmt_s(s.cached_s)})\n",
                style="yellow",
            )
            continue
        out.append(
            f"{tok:<8} {s.row:>4}  {fmt_flops(s.cached_flops):>12} {fmt_flops(s.recompute_flops):>10}"
            f"  {fmt_s(s.cached_s):>11} {fmt_s(s.recompute_s):>10}\n"
        )
    return out


class KVCacheScreen(ModalScreen[None]):
    """A KV cache over the Generate screen's text, stepped greedily by key."""

    BINDINGS = [
        Binding("n,enter", "step(1)", "Append the most likely token"),
        Binding("space", f"step({BURST})", f"Append {BURST} tokens"),
        Binding("escape,v,q", "dismiss", "Close the KV cache"),
        SAVE_SCREEN,
    ]
    DEFAULT_CSS = """
    KVCacheScreen { align: center middle; }
    KVCacheScreen > VerticalScroll { width: 95%; max-width: 100; height: 95%; border: round $accent;
                                     background: $surface; padding: 0 1; }
    KVCacheScreen Static { height: auto; }
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.watch = None
        self.error = ""

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("KV cache: prefilling the prompt…", id="kv-title")
            yield Static(id="kv-summary")
            yield Static(id="kv-grid")
            yield Static(id="kv-steps")
            yield Static(Text("n: next token · space: 8 more · esc: close", style="dim"), id="kv-keys")

    def on_mount(self) -> None:
        self._run(0)

    def action_step(self, n: int) -> None:
        """Append n greedy tokens, each measured with and without the cache."""
        if self.watch is not None:
            self._run(n)

    @background("kv")
    def _run(self, n: int) -> None:
        from tinylm.core import KVWatch, TinyLMError

        worker = get_current_worker()
        try:
            if self.watch is None:
                self.watch = KVWatch(self.app.session.model, self.text)
                self.app.call_from_thread(self.show)
            for _ in range(n):
                if worker.is_cancelled:
                    return
                self.watch.step()
                self.app.call_from_thread(self.show)
        except TinyLMError as exc:
            self.error = str(exc)
            self.app.call_from_thread(self.show)
        except RuntimeError:  # the app is closing
            pass

    def show(self) -> None:
        if self.error:
            self.query_one("#kv-title", Static).update(Text(self.error, style="red"))
            return
        w = self.watch
        tok = self.app.session.model.tokenizer
        shown = display_token(tok.decode(w.context[-40:]), 40)
        self.query_one("#kv-title", Static).update(Text(f"KV cache of …{shown}", style="bold"))
        self.query_one("#kv-summary", Static).update(summary(w))
        width = self.query_one(VerticalScroll).scrollable_content_region.width
        self.query_one("#kv-grid", Static).update(cache_grid(w, width))
        self.query_one("#kv-steps", Static).update(steps_table(w, tok))

    def action_dismiss(self) -> None:
        self.workers.cancel_group(self, "kv")
        self.dismiss(None)
