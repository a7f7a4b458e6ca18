"""Training history: snapshots of a model at log-spaced steps (a fixed probe prompt's attention maps, the token
embeddings, the losses and a short sample), in bounded memory, and the embedding map on one fixed PCA basis."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from .errors import TinyLMError

PROBE_TOKENS = 24  # the probe prompt's length (at most the context): its attention maps are (L, NH, P, P)
MAP_TOKENS = 256  # token ids 0..MAP_TOKENS-1 are kept for the embedding map (all of a small vocabulary)
SAMPLE_PROMPT_TOKENS = 8  # the sample continues the probe's first tokens
SAMPLE_TOKENS = 24  # tokens generated per snapshot, seeded (SAMPLE_SEED, SAMPLE_TEMPERATURE)
SAMPLE_SEED = 0
SAMPLE_TEMPERATURE = 0.8
MAX_SNAPSHOTS = 48  # never more snapshots than this...
MIN_SNAPSHOTS = 8  # ...nor fewer than this, whatever the model's size
MAX_BYTES = 32 << 20  # ...and within this many bytes of arrays when MIN_SNAPSHOTS fit


def on_schedule(step: int) -> bool:
    """Steps 0, 1, 2, 3, 4, 6, 8, 12, 16, 24, ...: the powers of two and one and a half times them,
    two snapshots an octave, so early training (where most changes) is seen closely and a long run stays cheap."""
    if step <= 0:
        return step == 0
    odd = step // 3 if step % 3 == 0 else step
    return odd & (odd - 1) == 0


def thin_index(steps: list[int]) -> int:
    """The snapshot to drop when the history is full: the inner one whose neighbours are closest on a log
    scale (log(1 + step)), so the rest stay evenly spread in log steps; the first and last always stay."""
    logs = [math.log1p(s) for s in steps]
    gaps = [logs[i + 1] - logs[i - 1] for i in range(1, len(steps) - 1)]
    return 1 + int(np.argmin(gaps))


@dataclass(frozen=True)
class Snapshot:
    """The model at one step, as the history keeps it."""

    step: int
    attention: np.ndarray  # (L, NH, P, P) float32: the probe's masked softmax weights, as model.trace gives them
    embedding: np.ndarray  # (N, C) float32: token embeddings of the map's token ids
    train_loss: float | None  # the loss of the batch of this step (None before any step)
    val_loss: float | None  # the latest validation loss at or before this step
    val_step: int | None  # the step that validation loss was measured at
    sample: str  # SAMPLE_TOKENS tokens generated after the sample prompt with these weights

    @property
    def nbytes(self) -> int:
        return self.attention.nbytes + self.embedding.nbytes + len(self.sample.encode())


@dataclass(frozen=True)
class EmbeddingMaps:
    """Every snapshot's embedding map on the axes of one reference snapshot."""

    reference: int  # index of the snapshot whose principal axes are used
    axes: np.ndarray  # (2, C) float64 unit vectors, each turned so its largest loading is positive
    coords: np.ndarray  # (S, N, 2) float64: each snapshot's rows, centred on their own mean, on the axes
    explained: np.ndarray  # (S, 2): the share of each snapshot's own variance along each axis


def principal_axes(table: np.ndarray) -> np.ndarray:
    """The first two principal axes (2, C) of a (N, C) table (float64 SVD), each turned so its largest
    loading is positive (an SVD may return either sign: this keeps the picture the same every time)."""
    x = np.asarray(table, dtype=np.float64)
    _, _, vt = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    axes = vt[:2]
    if len(axes) < 2:
        axes = np.vstack([axes, np.zeros((2 - len(axes), x.shape[1]))])
    signs = np.sign(axes[np.arange(2), np.abs(axes).argmax(axis=1)])
    return axes * np.where(signs == 0, 1.0, signs)[:, None]


def embedding_maps(embeddings: list[np.ndarray], reference: int = -1) -> EmbeddingMaps:
    """Project every snapshot's (N, C) embeddings on the principal axes of one reference snapshot (default
    the latest): the axes stay fixed, so a token's point moves from snapshot to snapshot instead of jumping
    with each snapshot's own PCA. Each snapshot is centred on its own mean first (a shift of every token
    together is not a move on the map); at the reference the map is that snapshot's ordinary PCA."""
    reference = range(len(embeddings))[reference]
    axes = principal_axes(embeddings[reference])
    coords, explained = [], []
    for table in embeddings:
        x = np.asarray(table, dtype=np.float64)
        x = x - x.mean(axis=0)
        xy = x @ axes.T  # (N, 2)
        total = float((x * x).sum())
        coords.append(xy)
        explained.append((xy * xy).sum(axis=0) / total if total > 0 else np.zeros(2))
    return EmbeddingMaps(reference, axes, np.stack(coords), np.stack(explained))


def default_probe(ids: np.ndarray, tokenizer, length: int) -> np.ndarray:
    """`length` tokens of `ids` (held-out text), starting at the first word within the first 64 tokens
    (after a space or line break), so the probe reads as text."""
    ids = np.asarray(ids, dtype=np.int64)
    start = 0
    if tokenizer is not None and len(ids) > length:
        for i in range(1, min(64, len(ids) - length)):
            if tokenizer.decode([int(ids[i - 1])])[-1:].isspace():
                start = i
                break
    return ids[start : start + length].copy()


class HistoryRecorder:
    """Snapshots of one run, oldest first, at most max_snapshots of them (when full, thin_index picks the
    one to drop). Safe to read from other threads while the training thread adds to it."""

    def __init__(self, probe_ids, map_ids, max_snapshots: int = MAX_SNAPSHOTS) -> None:
        self.probe_ids = np.asarray(probe_ids, dtype=np.int64).copy()  # (P,)
        self.map_ids = np.asarray(map_ids, dtype=np.int64).copy()  # (N,)
        self.max_snapshots = max(int(max_snapshots), 3)  # the first, the last and one between
        self._snapshots: list[Snapshot] = []
        self._lock = threading.Lock()

    @classmethod
    def for_model(cls, model, probe_ids) -> HistoryRecorder:
        """A recorder sized for this model: as many snapshots as fit in MAX_BYTES, between MIN_SNAPSHOTS and
        MAX_SNAPSHOTS."""
        cfg = model.config
        probe = np.asarray(probe_ids, dtype=np.int64)[: min(PROBE_TOKENS, cfg.block_size)]
        n = min(cfg.vocab_size, MAP_TOKENS)
        each = 4 * (cfg.n_layer * cfg.n_head * len(probe) ** 2 + n * cfg.n_embd) + 4 * SAMPLE_TOKENS
        return cls(probe, np.arange(n), max(MIN_SNAPSHOTS, min(MAX_SNAPSHOTS, MAX_BYTES // each)))

    def __len__(self) -> int:
        return len(self._snapshots)

    def snapshots(self) -> tuple[Snapshot, ...]:
        """The snapshots now, oldest first (a copy: later ones do not change it)."""
        with self._lock:
            return tuple(self._snapshots)

    @property
    def steps(self) -> list[int]:
        return [s.step for s in self.snapshots()]

    @property
    def nbytes(self) -> int:
        """Bytes the snapshots hold now."""
        return sum(s.nbytes for s in self.snapshots())

    @property
    def max_nbytes(self) -> int:
        """Bytes the history can reach: max_snapshots of the size of the latest (the sample varies a little)."""
        shots = self.snapshots()
        return self.max_snapshots * shots[-1].nbytes if shots else 0

    def due(self, step: int) -> bool:
        """Whether a snapshot belongs at this step: an empty history, or a step on the schedule not yet taken
        (asked after every training step: the schedule is checked first, and nothing is copied)."""
        if self._snapshots and not on_schedule(step):
            return False
        with self._lock:
            return not self._snapshots or step > self._snapshots[-1].step

    def sample_prompt(self) -> np.ndarray:
        return self.probe_ids[:SAMPLE_PROMPT_TOKENS]

    def take(self, model, step: int, train_loss=None, val_loss=None, val_step=None) -> Snapshot | None:
        """Record the model's weights as they are at `step` (the caller holds them still: between steps).
        A step at or before the latest snapshot is not taken again; a model whose forward pass overflows is
        skipped (None), so a diverging run still reports its own error."""
        shots = self.snapshots()
        if shots and step <= shots[-1].step:
            return None
        try:
            snapshot = self.capture(model, step, train_loss, val_loss, val_step)
        except (TinyLMError, FloatingPointError):
            return None
        self.add(snapshot)
        return snapshot

    def capture(self, model, step: int, train_loss=None, val_loss=None, val_step=None) -> Snapshot:
        """A snapshot of the model now: the probe's trace, a copy of the embeddings and a seeded sample."""
        from .sampling import Sampling

        with model.keeping_buffers():
            trace = model.trace(self.probe_ids)
            L = model.config.n_layer
            if model.config.attention:
                attention = np.stack([trace[f"h.{l}.att"] for l in range(L)]).astype(np.float32)  # (L, NH, P, P)
            else:  # an MLP-only model has no attention maps (the screens say so): zeros keep the file's shape
                P = len(trace.ids)
                attention = np.zeros((L, model.config.n_head, P, P), dtype=np.float32)
            embedding = model.weight_rows("transformer.wte.weight", self.map_ids)  # (N, C)
            sampling = Sampling(temperature=SAMPLE_TEMPERATURE, seed=SAMPLE_SEED)
            steps = model.generate(self.sample_prompt(), sampling, max_new_tokens=SAMPLE_TOKENS)
            ids = [g.id for g in steps if not g.end]  # an end-of-text token ends the sample; it is not text
        sample = model.tokenizer.decode(ids) if model.tokenizer is not None else " ".join(map(str, ids))
        loss = float(train_loss) if train_loss is not None else None
        val = float(val_loss) if val_loss is not None else None
        return Snapshot(int(step), attention, embedding, loss, val, val_step if val is not None else None, sample)

    def add(self, snapshot: Snapshot) -> None:
        """Append a snapshot (later than every other), thinning the history when it is full."""
        with self._lock:
            self._snapshots.append(snapshot)
            while len(self._snapshots) > self.max_snapshots:
                del self._snapshots[thin_index([s.step for s in self._snapshots])]

    def embedding_maps(self, reference: int = -1) -> EmbeddingMaps | None:
        """Every snapshot's embedding map on the reference snapshot's axes (see embedding_maps); None when empty."""
        shots = self.snapshots()
        return embedding_maps([s.embedding for s in shots], reference) if shots else None
