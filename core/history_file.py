"""A training history inside a checkpoint directory: history.safetensors (the snapshots' arrays) and
history.json (steps, losses, samples, probe), checked against the model when read back."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from .errors import CheckpointError
from .files import NotReadable, read_json_text
from .history import HistoryRecorder, Snapshot
from .tensorfile import TensorFile

HISTORY_TENSORS = "history.safetensors"
HISTORY_JSON = "history.json"
HISTORY_VERSION = 1


def save_history(directory, recorder: HistoryRecorder) -> None:
    """Write the recorder's snapshots into `directory` (a checkpoint's staging directory: the save is atomic
    with the rest of the checkpoint). Arrays: attention (S, L, NH, P, P) and embedding (S, N, C), float32."""
    shots = recorder.snapshots()
    directory = Path(directory)
    tensors = {
        "attention": np.ascontiguousarray(np.stack([s.attention for s in shots]), dtype=np.float32),
        "embedding": np.ascontiguousarray(np.stack([s.embedding for s in shots]), dtype=np.float32),
    }
    save_file(tensors, str(directory / HISTORY_TENSORS), metadata={"format": "np"})
    record = {
        "format_version": HISTORY_VERSION,
        "max_snapshots": recorder.max_snapshots,
        "probe_ids": [int(i) for i in recorder.probe_ids],
        "map_ids": [int(i) for i in recorder.map_ids],
        "steps": [s.step for s in shots],
        "train_loss": [s.train_loss for s in shots],
        "val_loss": [s.val_loss for s in shots],
        "val_step": [s.val_step for s in shots],
        "samples": [s.sample for s in shots],
    }
    (directory / HISTORY_JSON).write_text(json.dumps(record) + "\n")


def has_history(directory) -> bool:
    directory = Path(directory)
    return (directory / HISTORY_JSON).exists() or (directory / HISTORY_TENSORS).exists()


class _Damaged(ValueError):
    pass


def load_history(directory, model) -> HistoryRecorder | None:
    """The history saved in a checkpoint directory, checked against the model (None when the checkpoint has
    none: written before histories, or without a trainer). A damaged one is a CheckpointError saying how to
    open the checkpoint without it."""
    directory = Path(directory)
    if not has_history(directory):
        return None
    where = directory / HISTORY_JSON
    try:
        record = json.loads(read_json_text(where))
        return _recorder(record, TensorFile(directory / HISTORY_TENSORS), model)
    except CheckpointError as exc:
        message = f"{exc}"
    except FileNotFoundError:
        message = f"{directory} has {HISTORY_TENSORS} but no {HISTORY_JSON}"
    except NotReadable as exc:
        message = f"{where} {exc}"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, _Damaged) as exc:
        message = f"{where} is damaged ({exc})"
    raise CheckpointError(
        f"{message}; move {HISTORY_JSON} and {HISTORY_TENSORS} out of {directory} to open it without its history"
    )


def _recorder(record, tensors: TensorFile, model) -> HistoryRecorder:
    cfg = model.config
    if not isinstance(record, dict) or record.get("format_version") != HISTORY_VERSION:
        raise _Damaged(f"not a version {HISTORY_VERSION} history")
    probe, map_ids = _ids(record, "probe_ids", cfg.vocab_size), _ids(record, "map_ids", cfg.vocab_size)
    if not 0 < len(probe) <= cfg.block_size or not len(map_ids):
        raise _Damaged(f"probe_ids must hold 1 to {cfg.block_size} tokens and map_ids at least one")
    steps = record.get("steps")
    if not isinstance(steps, list) or not steps or not all(_is_int(s) and s >= 0 for s in steps):
        raise _Damaged("steps must be a list of step numbers")
    if any(b <= a for a, b in zip(steps, steps[1:])):
        raise _Damaged("steps must increase")
    S, P, N = len(steps), len(probe), len(map_ids)
    columns = {}
    for name, check in (("train_loss", _is_loss), ("val_loss", _is_loss), ("val_step", _is_step), ("samples", _is_str)):
        values = record.get(name)
        if not isinstance(values, list) or len(values) != S or not all(check(v) for v in values):
            raise _Damaged(f"{name} must be a list of {S} values of its kind")
        columns[name] = values
    max_snapshots = record.get("max_snapshots")
    if not _is_int(max_snapshots) or max_snapshots < S:
        raise _Damaged(f"max_snapshots must be a whole number of at least {S}")
    expected = {"attention": (S, cfg.n_layer, cfg.n_head, P, P), "embedding": (S, N, cfg.n_embd)}
    if tensors.names() != set(expected):
        raise _Damaged(f"{HISTORY_TENSORS} must hold exactly the tensors attention and embedding")
    arrays = {}
    for name, shape in expected.items():
        if tensors.shape(name) != shape:
            raise _Damaged(
                f"{HISTORY_TENSORS}: {name} has shape {tensors.shape(name)}, expected {shape} for this model"
            )
        arrays[name] = np.empty(shape, dtype=np.float32)
        tensors.read_into(name, arrays[name])
        if not np.isfinite(arrays[name]).all():
            raise _Damaged(f"{HISTORY_TENSORS}: {name} holds NaN or inf values")
    recorder = HistoryRecorder(probe, map_ids, max_snapshots)
    for k, step in enumerate(steps):
        recorder.add(
            Snapshot(
                int(step),
                arrays["attention"][k],
                arrays["embedding"][k],
                columns["train_loss"][k],
                columns["val_loss"][k],
                columns["val_step"][k],
                columns["samples"][k],
            )
        )
    return recorder


def _ids(record: dict, name: str, vocab_size: int) -> np.ndarray:
    ids = record.get(name)
    if not isinstance(ids, list) or not all(_is_int(i) and 0 <= i < vocab_size for i in ids):
        raise _Damaged(f"{name} must be a list of token ids in [0, {vocab_size})")
    return np.array(ids, dtype=np.int64)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_loss(value) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value))


def _is_step(value) -> bool:
    return value is None or (_is_int(value) and value >= 0)


def _is_str(value) -> bool:
    return isinstance(value, str)
