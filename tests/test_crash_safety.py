"""A checkpoint save killed (SIGKILL) at every step and at random moments: opening the directory
afterwards gives the previous checkpoint or the new one, byte for byte, and no leftovers."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import tinylm.core.safedir as safedir
from tinylm.core import CheckpointRecovered, ModelConfig, TrainConfig, Trainer, load, load_corpus, make_trainer

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork to kill a saving child")

# The audit events of a save that touch the file system (builtins.id and the like are left out): the
# child is killed just before the Nth of them, so every state between two of its operations is reached.
FS_EVENTS = {
    "open",
    "os.rename",
    "os.remove",
    "os.rmdir",
    "os.mkdir",
    "os.chmod",
    "os.scandir",
    "os.listdir",
    "os.walk",
    "shutil.rmtree",
    "tempfile.mkdtemp",
    "ctypes.dlopen",
    "ctypes.dlsym",
}


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file under a directory, by relative path."""
    return {str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()}


@pytest.fixture(scope="module")
def states(tmp_path_factory):
    """A trainer at step 4, and the files of its checkpoint at step 2 (old) and step 4 (new)."""
    root = tmp_path_factory.mktemp("crash")
    tr = make_trainer(
        load_corpus("verses"),
        "char",
        None,
        ModelConfig(n_layer=2, n_head=2, n_embd=32, block_size=16),
        TrainConfig(batch_size=4, max_steps=10, eval_interval=100, eval_batches=1),
    )
    for _ in range(2):
        tr.step()
    tr.save(root / "old")
    for _ in range(2):
        tr.step()
    tr.save(root / "new")
    return tr, root / "old", snapshot(root / "old"), snapshot(root / "new")


def fork_save(trainer, path: Path, kill_at: int | None = None, count_fd: int | None = None) -> int:
    """Save in a forked child; kill it with SIGKILL just before its kill_at-th file-system event,
    or report the number of events through count_fd. Returns the child's wait status."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: the child only saves
        pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            seen = [0]

            def hook(event, args):
                if event in FS_EVENTS:
                    if seen[0] == kill_at:
                        os.kill(os.getpid(), signal.SIGKILL)
                    seen[0] += 1

            sys.addaudithook(hook)
            trainer.save(path)
            if count_fd is not None:
                os.write(count_fd, str(seen[0]).encode())
            os._exit(0)
        except BaseException:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    return status


def check_old_or_new(path: Path, old: dict, new: dict) -> str:
    """Open the checkpoint (which recovers an interrupted save) and say which version it holds."""
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always", CheckpointRecovered)
        load(path)
    files = snapshot(path)
    assert files in (old, new), sorted(files)
    leftovers = [p.name for p in path.parent.iterdir() if p.name != path.name]
    assert leftovers == [], leftovers
    return "old" if files == old else "new"


def count_events(trainer, path: Path) -> int:
    read, write = os.pipe()
    status = fork_save(trainer, path, count_fd=write)
    os.close(write)
    n = int(os.read(read, 64) or b"0")
    os.close(read)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    return n


@pytest.mark.parametrize("exchange", [True, False], ids=["one-step-swap", "two-renames"])
def test_killed_at_every_step_of_a_save(states, tmp_path, monkeypatch, exchange):
    trainer, old_dir, old, new = states
    if not exchange:
        monkeypatch.setattr(safedir, "_exchange", lambda a, b: False)
    ckpt = tmp_path / "work" / "ckpt"
    shutil.copytree(old_dir, ckpt)
    n = count_events(trainer, ckpt)
    assert n >= 10 and snapshot(ckpt) == new
    seen = set()
    for kill_at in range(n + 1):
        shutil.rmtree(ckpt.parent)
        shutil.copytree(old_dir, ckpt)
        status = fork_save(trainer, ckpt, kill_at=kill_at)
        assert (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL) or kill_at == n, status
        seen.add(check_old_or_new(ckpt, old, new))
    assert seen == {"old", "new"}


def test_killed_at_random_moments(states, tmp_path):
    trainer, old_dir, old, new = states
    ckpt = tmp_path / "work" / "ckpt"
    shutil.copytree(old_dir, ckpt)
    started = time.perf_counter()
    fork_save(trainer, ckpt)
    duration = time.perf_counter() - started
    rng = random.Random(7)
    for _ in range(40):
        shutil.rmtree(ckpt.parent)
        shutil.copytree(old_dir, ckpt)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:
            try:
                trainer.save(ckpt)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0, 1.2 * duration))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        check_old_or_new(ckpt, old, new)


CHILD = """
import sys
from tinylm.core import Trainer
a, b = Trainer.resume(sys.argv[1]), Trainer.resume(sys.argv[2])
print("ready", flush=True)
while True:
    for t in (a, b):
        t.save(sys.argv[3])
"""


@pytest.mark.slow
def test_a_separate_process_killed_while_saving_over_and_over(states, tmp_path):
    """A fresh interpreter saving two checkpoints in turn, killed with SIGKILL at random moments."""
    _, old_dir, old, new = states
    new_dir = tmp_path / "new-copy"
    shutil.copytree(old_dir.parent / "new", new_dir)
    ckpt = tmp_path / "work" / "ckpt"
    shutil.copytree(old_dir, ckpt)
    rng = random.Random(11)
    seen = set()
    for _ in range(12):
        child = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(CHILD), str(old_dir), str(new_dir), str(ckpt)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.01, 0.3))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        seen.add(check_old_or_new(ckpt, old, new))
    assert seen == {"old", "new"}


# ----- what recovery does with each leftover, and what it leaves alone ----------------------------


def leftover(ckpt: Path, kind: str, suffix: str, source: Path | None) -> Path:
    p = ckpt.parent / f".{ckpt.name}{kind}{suffix}"
    if source is not None:
        shutil.copytree(source, p)
    else:
        p.mkdir()
        (p / "model.safetensors").write_bytes(b"half")
    return p


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_recovery_of_each_leftover(states, tmp_path):
    _, old_dir, old, new = states
    new_dir = old_dir.parent / "new"
    ckpt = tmp_path / "ckpt"
    gone = f"{dead_pid()}-abc"
    # killed between the two renames: the new copy was complete, so it goes in place
    leftover(ckpt, ".old-", gone, old_dir)
    leftover(ckpt, ".tmp-", gone, new_dir)
    with pytest.warns(CheckpointRecovered, match="finished the interrupted save"):
        load(ckpt)
    assert snapshot(ckpt) == new and [p.name for p in tmp_path.iterdir()] == ["ckpt"]
    # only the old copy aside: it goes back
    shutil.rmtree(ckpt)
    leftover(ckpt, ".old-", gone, old_dir)
    with pytest.warns(CheckpointRecovered, match="put the previous version back"):
        Trainer.resume(ckpt)
    assert snapshot(ckpt) == old and [p.name for p in tmp_path.iterdir()] == ["ckpt"]
    # a half-written save beside a good checkpoint: removed, and said so
    leftover(ckpt, ".tmp-", gone, None)
    with pytest.warns(CheckpointRecovered, match="removed 1 leftover"):
        load(ckpt)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_a_save_in_progress_in_a_live_process_and_names_a_save_never_makes_are_left_alone(states, tmp_path):
    _, old_dir, old, _ = states
    ckpt = tmp_path / "ckpt"
    shutil.copytree(old_dir, ckpt)
    busy = leftover(ckpt, ".tmp-", f"{os.getppid()}-xyz", None)  # a running process: ours' parent
    mine = leftover(ckpt, ".tmp-", "notes", None)  # a user's own file that only looks like a leftover
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckpointRecovered)
        load(ckpt)
    assert busy.exists() and mine.exists() and snapshot(ckpt) == old


def test_every_file_and_directory_is_flushed_before_it_is_published(states, tmp_path, monkeypatch):
    trainer, old_dir, _, _ = states
    ckpt = tmp_path / "ckpt"
    shutil.copytree(old_dir, ckpt)
    log = []
    real_fsync, real_rename, real_exchange = safedir.fsync_path, os.rename, safedir._exchange
    monkeypatch.setattr(safedir, "fsync_path", lambda p: (log.append(("fsync", Path(p).name)), real_fsync(p)))
    monkeypatch.setattr(safedir, "_exchange", lambda a, b: (log.append(("swap", a.name)), real_exchange(a, b))[1])
    monkeypatch.setattr(safedir.os, "rename", lambda a, b: (log.append(("rename", Path(a).name)), real_rename(a, b)))
    trainer.save(ckpt)
    swap = next(i for i, (what, _) in enumerate(log) if what in ("swap", "rename") and ".tmp-" in _)
    flushed = {name for what, name in log[:swap] if what == "fsync"}
    assert set(snapshot(ckpt)) <= flushed  # every file of the new checkpoint
    assert log[swap][1] in flushed  # and the directory holding them
    assert log[swap + 1] == ("fsync", tmp_path.name)  # the parent, so the swap itself is durable


def test_checkpoint_directory_is_not_private(states, tmp_path):
    trainer, _, _, _ = states
    umask = os.umask(0o022)
    try:
        trainer.save(tmp_path / "ckpt")
    finally:
        os.umask(umask)
    assert (tmp_path / "ckpt").stat().st_mode & 0o777 == 0o755
    np.testing.assert_array_equal(load(tmp_path / "ckpt").flat, trainer.model.flat)
