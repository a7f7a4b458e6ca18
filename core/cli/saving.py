"""Where `tinylm train` writes: the checkpoint, checked before training, never over another run without
--overwrite, and rescued elsewhere when saving fails; the --json-log, which never blocks or stops a run."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

from ..checkpoint import is_model_file, is_tinylm_checkpoint
from ..errors import CheckpointError, TinyLMError
from ..safedir import holds_cwd
from .common import UsageError, fmt_bytes, note

HISTORY_BYTES_PER_STEP = 400  # one step's metrics in trainer_state.json


class SavedElsewhere(TinyLMError):
    """The checkpoint could not go where it was asked to, and was saved to a rescue directory."""


def fingerprint(out: Path) -> tuple | None:
    """What model files `out` holds now (names, sizes, modification times), to see whether another run
    saves there while this one trains."""
    try:  # the model's files only: a log or notes kept beside them may change meanwhile
        files = [f for f in out.iterdir() if is_model_file(f.name)]
        return tuple(sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files))
    except OSError:
        return None


def _nearest_existing(path: Path) -> Path:
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def check_out(out: Path, *, overwrite: bool, resumed: Path | None = None) -> None:
    """Refuse an --out that saving would fail on, or that holds another run, before any training."""
    if holds_cwd(out):
        raise UsageError(
            f"--out {out} is the current directory (or holds it), which saving replaces; "
            "give a directory of its own, such as runs/NAME"
        )
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise UsageError(f"--out {out} is a file; give a directory for the checkpoint")
        entries = list(out.iterdir())
        if entries and not is_tinylm_checkpoint(out):
            raise UsageError(f"--out {out} is a non-empty directory that is not a tinylm checkpoint; choose another")
        same_run = resumed is not None and out.resolve() == resumed.resolve()
        if entries and not same_run and not overwrite:
            raise UsageError(
                f"--out {out} already holds a checkpoint of another run; choose another directory, "
                "or add --overwrite to replace it"
            )
    parent = _nearest_existing(out)
    if not parent.is_dir():
        raise UsageError(f"cannot create --out {out}: {parent} is not a directory")
    try:  # os.access says yes to root on a read-only file system: try it
        os.rmdir(tempfile.mkdtemp(prefix=".tinylm-write-test-", dir=parent))
    except OSError as exc:
        raise UsageError(
            f"cannot write --out {out}: {exc.strerror or exc} in {parent}; choose another directory"
        ) from None


def checkpoint_bytes(trainer) -> int:
    """About how many bytes the checkpoint of this run takes at its last step."""
    model = trainer.model
    floats = model.flat.size + model.wpe.size + 2 * model.flat.size  # weights, table, AdamW moments
    return 4 * floats + 64 * model.config.vocab_size + HISTORY_BYTES_PER_STEP * trainer.config.max_steps + (1 << 20)


def check_space(out: Path, trainer) -> None:
    """Refuse a run whose checkpoint would not fit on the disk of --out."""
    need, parent = checkpoint_bytes(trainer), _nearest_existing(out)
    try:
        free = shutil.disk_usage(parent).free
    except OSError:
        return
    if free < need:
        raise UsageError(
            f"--out {out}: the checkpoint needs about {fmt_bytes(need)} and only {fmt_bytes(free)} is free there; "
            "free some space or choose another disk"
        )


def _fresh(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def rescue_places(out: Path) -> list[Path]:
    """Where a checkpoint goes when `out` cannot take it: beside it, here, home, the temporary directory."""
    name = f"{out.name or 'checkpoint'}-rescued"
    places = [out.parent / name, Path.cwd() / name, Path.home() / name, Path(tempfile.gettempdir()) / name]
    return list(dict.fromkeys(places))


def save_or_rescue(trainer, out: Path, before: tuple | None, overwrite: bool) -> Path:
    """Save to `out`; if it changed while training (another run saved there) or the save fails, save
    to the first rescue place that works and raise SavedElsewhere saying where."""
    if not overwrite and fingerprint(out) != before:
        why = f"{out} changed while training (another run saved there?), so it was left alone"
    else:
        try:
            trainer.save(out)
            return out
        except (OSError, CheckpointError) as exc:
            why = f"could not save to {out} ({getattr(exc, 'strerror', None) or exc})"
    tried = []
    for place in rescue_places(out):
        place = _fresh(place)
        try:
            trainer.save(place)
        except (OSError, CheckpointError) as exc:
            tried.append(f"{place}: {getattr(exc, 'strerror', None) or exc}")
            continue
        raise SavedElsewhere(f"{why}; saved the checkpoint to {place} instead")
    raise SavedElsewhere(f"{why}, nor to any rescue directory ({'; '.join(tried)}); the training is lost")


class JsonLog:
    """--json-log FILE: one JSON line of metrics per step. Opened without blocking, so a FIFO that no
    process reads is refused instead of waiting forever; a write that fails ends the log, not the run."""

    def __init__(self, path, append: bool):
        self.path, self.file, self.logged = path, None, 0
        if path is None:
            return
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        flags |= getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, flags, 0o666)
        except OSError as exc:
            why = "it is a FIFO that no process reads" if exc.errno == errno.ENXIO else exc.strerror or exc
            raise UsageError(f"cannot write --json-log {path}: {why}") from None
        os.set_blocking(fd, True)  # a pipe with a reader may be slower than training: wait for it
        self.file = os.fdopen(fd, "w", encoding="utf-8")

    def write(self, metrics) -> None:
        """Write the metrics of the steps not logged yet (the list may repeat earlier steps)."""
        for m in metrics:
            if m.step <= self.logged:
                continue
            self.logged = m.step
            if self.file is None:
                continue
            try:
                self.file.write(json.dumps(dataclasses.asdict(m)) + "\n")
                self.file.flush()
            except OSError as exc:
                note(
                    f"cannot write --json-log {self.path} ({exc.strerror or exc}); the log stops here, training goes on"
                )
                self.close()

    def close(self) -> None:
        if self.file is not None:
            file, self.file = self.file, None
            try:
                file.close()
            except OSError:
                pass
