"""Saved runs, side by side: the loss history a checkpoint keeps (trainer_state.json) and how its settings
differ from another run's, for overlaying earlier runs' loss curves on the current one.

Only config.json and trainer_state.json are read (no weights), so listing a directory of runs is quick.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from .checkpoint import CONFIG_FILE, STATE_FILE
from .config import ModelConfig, TrainConfig, config_from_dict
from .errors import CheckpointError, ConfigError
from .files import NotReadable, read_json_text
from .hf_config import model_config_from_hf


@dataclass
class SavedRun:
    """One checkpoint's settings and the losses its trainer recorded (steps on the x axis)."""

    path: Path
    model: ModelConfig
    train: TrainConfig | None  # None: the checkpoint holds weights only
    tokenizer: str | None  # the tokenizer kind ("char", "bpe", ...)
    corpus: str | None  # the corpus name it was trained on
    step: int  # optimizer steps done
    train_steps: list[int] = field(default_factory=list)
    train_losses: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def tokens_per_step(self) -> int | None:
        """Tokens one step trains on (batch x window), to put runs with other batches on one axis."""
        if self.train is None:
            return None
        return self.train.batch_size * (self.train.context or self.model.block_size)

    @property
    def last_val(self) -> float | None:
        return self.val_losses[-1] if self.val_losses else None


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _read(path: Path, what: str) -> dict:
    try:
        data = json.loads(read_json_text(path))
    except FileNotFoundError:
        raise CheckpointError(f"{path.parent} has no {path.name}: not a checkpoint of a training run") from None
    except (OSError, ValueError, NotReadable) as exc:
        raise CheckpointError(f"{path} cannot be read ({what}: {exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} is damaged ({what} is not a JSON object)")
    return data


def read_saved_run(path) -> SavedRun:
    """A checkpoint directory's settings and loss history; CheckpointError in one line when it is not one
    (a directory without trainer_state.json has no history to show)."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a directory; a saved run is a checkpoint directory")
    data = _read(path / CONFIG_FILE, "config.json")
    model = model_config_from_hf(data, path)
    extra = data.get("tinylm") if isinstance(data.get("tinylm"), dict) else {}
    try:
        train = config_from_dict(TrainConfig, extra["train"]) if isinstance(extra.get("train"), dict) else None
    except ConfigError:
        train = None
    corpus = extra.get("corpus") if isinstance(extra.get("corpus"), dict) else {}
    history = _read(path / STATE_FILE, "trainer_state.json").get("history")
    if not isinstance(history, list):
        raise CheckpointError(f"{path}/{STATE_FILE} has no loss history")
    run = SavedRun(
        path=path,
        model=model,
        train=train,
        tokenizer=extra.get("tokenizer") if isinstance(extra.get("tokenizer"), str) else None,
        corpus=corpus.get("name") if isinstance(corpus.get("name"), str) else None,
        step=extra.get("step") if _number(extra.get("step")) else 0,
    )
    for h in history:  # a damaged entry is left out, as `tinylm info` does
        if not isinstance(h, dict) or not _number(h.get("step")):
            continue
        if _number(h.get("train_loss")):
            run.train_steps.append(int(h["step"]))
            run.train_losses.append(float(h["train_loss"]))
        if _number(h.get("val_loss")):
            run.val_steps.append(int(h["step"]))
            run.val_losses.append(float(h["val_loss"]))
    if not run.train_steps:
        raise CheckpointError(f"{path}/{STATE_FILE} records no training steps")
    return run


def find_saved_runs(roots, skip=()) -> list[Path]:
    """Checkpoint directories with a loss history (trainer_state.json) in or directly under each root,
    newest first; paths in `skip` (the current run's) are left out. Unreadable roots are skipped."""
    found: dict[Path, float] = {}
    skipped = {Path(p).resolve() for p in skip if p}
    for root in roots:
        if not root:
            continue
        root = Path(root)
        try:
            candidates = [root, *sorted(p for p in root.iterdir() if p.is_dir())] if root.is_dir() else []
        except OSError:
            continue
        for d in candidates:
            state = d / STATE_FILE
            try:
                if state.is_file() and (d / CONFIG_FILE).is_file() and d.resolve() not in skipped:
                    found.setdefault(d, state.stat().st_mtime)
            except OSError:
                continue
    return sorted(found, key=lambda p: -found[p])


def _lr(x: float) -> str:
    return f"{x:g}"


def run_differences(run: SavedRun, model: ModelConfig, train: TrainConfig | None, tokenizer: str | None) -> list[str]:
    """How a saved run's settings differ from the current run's, in a few words each ('4 layers',
    'bpe tokens', 'no attention', 'lr 0.003'); empty when they differ in nothing compared."""
    out = []
    m = run.model
    if m.n_layer != model.n_layer:
        out.append(f"{m.n_layer} layer{'s' if m.n_layer != 1 else ''}")
    if m.attention != model.attention:
        out.append("no attention" if not m.attention else "with attention")
    if run.tokenizer and tokenizer and run.tokenizer != tokenizer:
        out.append(f"{run.tokenizer} tokens (loss per token: not comparable)")
    elif m.vocab_size != model.vocab_size:
        out.append(f"vocab {m.vocab_size:,}")
    if run.train is not None and train is not None and not math.isclose(run.train.learning_rate, train.learning_rate):
        out.append(f"lr {_lr(run.train.learning_rate)}")
    if m.n_embd != model.n_embd:
        out.append(f"{m.n_embd} wide")
    if m.n_head != model.n_head:
        out.append(f"{m.n_head} heads")
    if m.block_size != model.block_size:
        out.append(f"context {m.block_size}")
    if m.positional != model.positional:
        out.append(f"{m.positional} positions")
    if run.train is not None and train is not None and run.train.batch_size != train.batch_size:
        out.append(f"batch {run.train.batch_size}")
    return out


def describe_run(run: SavedRun) -> str:
    """One line naming a run by its settings: '2 layers x 4 heads x 64, char, lr 0.003, 600 steps'."""
    m = run.model
    parts = [f"{m.n_layer}L x {m.n_head}H x {m.n_embd}"]
    if not m.attention:
        parts.append("no attention")
    if run.tokenizer:
        parts.append(run.tokenizer)
    if run.train is not None:
        parts.append(f"lr {_lr(run.train.learning_rate)}")
    parts.append(f"{run.step} steps")
    if run.last_val is not None:
        parts.append(f"val {run.last_val:.3f}")
    return ", ".join(parts)
