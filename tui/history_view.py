"""The training history as the screens show it: which snapshot is scrubbed to, its lines of text, and the keys."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from textual.binding import Binding

HISTORY = Binding.Group("History")


def scrub_bindings(show: bool = True) -> list[Binding]:
    """The history keys; show=False keeps them out of a footer that is full at 80 columns (help and the
    command palette list them either way)."""
    return [
        Binding("less_than_sign", "scrub(-1)", "History: earlier snapshot", key_display="<", group=HISTORY, show=show),
        Binding("greater_than_sign", "scrub(1)", "History: later snapshot", key_display=">", group=HISTORY, show=show),
        Binding("L", "live", "History: back to live", show=False),
    ]


KEYS_HINT = "< > step · L live"


def recorder_of(session):
    """The session's history recorder: its trainer's, else that of the checkpoint it opened; None without one."""
    trainer = session.trainer
    return getattr(trainer, "recorder", None) if trainer is not None else session.saved_history


@dataclass(frozen=True)
class Scrubbed:
    """The snapshot a session is scrubbed to, with where it sits in the history."""

    snapshot: object  # tinylm.core.Snapshot
    index: int  # 0-based among the snapshots
    count: int
    snapshots: tuple  # all of them, oldest first
    recorder: object
    last_step: int  # the run's planned steps (or the latest snapshot's step without a trainer)

    @property
    def step(self) -> int:
        return self.snapshot.step

    @property
    def where(self) -> str:
        """'step 40 of 600'."""
        return f"step {self.step} of {self.last_step}"


def scrubbed(session) -> Scrubbed | None:
    """The snapshot the session is scrubbed to (the one at its step, else the latest before it), or None: live."""
    recorder = recorder_of(session)
    if session.history_step is None or recorder is None:
        return None
    shots = recorder.snapshots()
    if not shots:
        return None
    steps = [s.step for s in shots]
    index = max(int(np.searchsorted(steps, session.history_step, side="right")) - 1, 0)
    last = session.trainer.config.max_steps if session.trainer is not None else steps[-1]
    return Scrubbed(shots[index], index, len(shots), shots, recorder, max(last, steps[-1]))


def scrub(session, delta: int) -> str | None:
    """Step the session's history cursor by delta snapshots (from live, < goes to the latest one and > to the
    first); past the latest it goes back to live. Returns a message when there is no history to scrub."""
    recorder = recorder_of(session)
    shots = recorder.snapshots() if recorder is not None else ()
    if not shots:
        if recorder is None:
            return "This model has no training history (it needs a trainer: train it, or open a saved run)."
        return "No snapshots yet: the history starts with the first training step."
    steps = [s.step for s in shots]
    current = scrubbed(session)
    if current is None:
        index = len(steps) - 1 if delta < 0 else 0
    else:
        index = current.index + delta
    if index >= len(steps):
        session.history_step = None
    else:
        session.history_step = steps[max(index, 0)]
    return None


def memory_text(at: Scrubbed) -> str:
    """'12/20 snapshots (≤48, 0.6 MB)': where it is and what the history may hold."""
    mb = at.recorder.nbytes / 1e6
    return f"{at.index + 1}/{at.count} snapshots (≤{at.recorder.max_snapshots}, {mb:.1f} MB)"


def heads_line(at: Scrubbed, model, room: int | None = None) -> str:
    """What the heads do on the probe at this snapshot, computed from their weights; longer than `room`,
    each named head's pattern is said short, so the counts at the end stay on the line."""
    from tinylm.core import describe_heads, heads_summary

    if model is not None and not model.config.attention:  # its snapshots hold zeros in place of maps
        return "none: the model has no attention (MLP only)"
    patterns = describe_heads(at.snapshot.attention)
    line = heads_summary(patterns)
    return line if room is None or len(line) <= room else heads_summary(patterns, short=True)


def layer_line(attention: np.ndarray, selected: int = 0, room: int | None = None) -> str:
    """'h0 looks one token back (0.83) · h1 spreads evenly (entropy 97% of uniform)' for one layer (NH, P, P);
    longer than `room`, the heads other than the selected one say it short ('h1 even'), so each is named."""
    from tinylm.core import describe_head

    patterns = [describe_head(a) for a in attention]
    line = " · ".join(f"h{h} {p.text}" for h, p in enumerate(patterns))
    if room is None or len(line) <= room:
        return line
    return " · ".join(f"h{h} {p.text if h == selected else p.short}" for h, p in enumerate(patterns))


_maps: tuple = (None, None)  # (key, EmbeddingMaps): the latest maps made, reused while the history is the same


def embedding_maps(at: Scrubbed):
    """Every snapshot's embedding map on the latest snapshot's axes (made again when the history changes)."""
    global _maps
    key = (id(at.recorder), tuple(s.step for s in at.snapshots))
    if _maps[0] != key:
        from tinylm.core import embedding_maps as maps_of

        _maps = (key, maps_of([s.embedding for s in at.snapshots]))
    return _maps[1]


def movement_line(at: Scrubbed) -> str:
    """How far the tokens moved on the map since the previous snapshot (mean distance), against how spread out
    they are (root mean square distance from their mean)."""
    maps = embedding_maps(at)
    xy = maps.coords[at.index]
    spread = float(np.sqrt((xy**2).sum(axis=1).mean()))
    if at.index == 0:
        return f"the first snapshot · spread {spread:.3f}"
    moved = float(np.linalg.norm(xy - maps.coords[at.index - 1], axis=1).mean())
    before = at.snapshots[at.index - 1].step
    return f"mean move {moved:.3f} since step {before} · spread {spread:.3f}"
