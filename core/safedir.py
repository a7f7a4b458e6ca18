"""Replacing a directory so that a crash at any moment leaves the old one or the new one, complete.

A save writes into `.NAME.tmp-PID-XXXX` beside NAME, flushes every file and the directory to disk,
then swaps it in. On Linux the swap is one `renameat2(RENAME_EXCHANGE)`, so NAME never goes missing;
elsewhere NAME is first renamed to `.NAME.old-PID-XXXX` (same suffix) and the new one renamed in.
What a crash can leave behind, and what `recover` does with it on the next open or save:
- `.tmp-*` alone: a save that never finished (or, after an exchange, the old copy): removed.
- NAME missing, `.old-S` and `.tmp-S`: killed between the two renames; the new copy was already
  complete on disk, so it is renamed into place; with `.old-S` alone, the old copy is put back.
Leftovers of a process that is still running (a save in progress) are left alone.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

TMP, OLD = ".tmp-", ".old-"
_OURS = re.compile(r"[0-9]+-[A-Za-z0-9_]+")  # PID-XXXX, as staging_dir names them
_EXCHANGE_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM}


def holds_cwd(path: Path) -> bool:
    """Whether `path` is the current directory or one of its ancestors (replacing it would pull the
    directory out from under the process, and the root cannot be renamed at all)."""
    try:
        here = Path.cwd().resolve()
    except OSError:  # the current directory is gone
        return False
    target = Path(os.path.realpath(path))
    return target == here or target in here.parents


def staging_dir(path: Path) -> Path:
    """An empty directory beside `path` to write the new version into, readable as umask allows."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}{TMP}{os.getpid()}-", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private (0700); a checkpoint is an ordinary directory
    return tmp


def fsync_path(path: Path) -> None:
    """Flush a file's or a directory's contents (a directory: its entries) to disk."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if path.is_dir() else os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF):  # some file systems cannot sync a directory
            raise
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Flush every file under `root`, then every directory, deepest first."""
    dirs = []
    for here, _, files in os.walk(root):
        for name in files:
            fsync_path(Path(here) / name)
        dirs.append(Path(here))
    for d in reversed(dirs):
        fsync_path(d)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):  # a C library without it (glibc before 2.28, musl)
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in _EXCHANGE_UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def carry_over(old: Path, new: Path, replaced) -> int:
    """Put into `new` what a user keeps in `old` besides the files being replaced (notes, a log, a
    subdirectory), so that a swap loses none of them: hard links (the same files, and an open log
    goes on writing into its one copy), copies where linking fails. `replaced(name)` says which
    names the new version supersedes. Returns how many entries moved over."""
    moved = 0
    for entry in sorted(old.iterdir()):
        target = new / entry.name
        if replaced(entry.name) or target.exists() or target.is_symlink():
            continue
        if entry.is_symlink():
            os.symlink(os.readlink(entry), target)
        elif entry.is_dir():
            shutil.copytree(entry, target, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, target)
        moved += 1
    return moved


def _link_or_copy(src, dst) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def publish(tmp: Path, path: Path) -> None:
    """Make the complete directory `tmp` appear as `path`, replacing what was there."""
    fsync_tree(tmp)
    parent = path.parent
    if not path.exists():
        os.rename(tmp, path)
        fsync_path(parent)
        return
    if _exchange(tmp, path):
        fsync_path(parent)
        shutil.rmtree(tmp, ignore_errors=True)  # the old version now
        return
    old = parent / tmp.name.replace(TMP, OLD, 1)
    os.rename(path, old)
    try:
        fsync_path(parent)
        os.rename(tmp, path)
    except BaseException:
        os.rename(old, path)
        raise
    fsync_path(parent)
    shutil.rmtree(old, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _leftovers(path: Path) -> list[tuple[Path, str, str, bool]]:
    """(leftover, kind, suffix, live) beside `path`; live: its process is still running (or is this one)."""
    found = []
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return []
    for entry in entries:
        for kind in (TMP, OLD):
            head = f".{path.name}{kind}"
            if entry.name.startswith(head):
                suffix = entry.name[len(head) :]
                if not _OURS.fullmatch(suffix):  # not a name a save makes: not ours to touch
                    continue
                pid = int(suffix.partition("-")[0])
                live = pid == os.getpid() or _pid_alive(pid)
                found.append((entry, kind, suffix, live))
    return found


def recover(path: Path) -> str | None:
    """Finish or undo an interrupted replacement of `path` and remove its leftovers; returns one line
    saying what was done, or None when there was nothing to do."""
    path = Path(path)
    found = _leftovers(path)
    if not found:
        return None
    restored = None
    try:
        if not path.exists():
            # Whoever moved the old version aside (even a process still alive, or one whose id was
            # reused) had the new one complete: putting one of them in place is always right.
            tmps = {suffix: entry for entry, kind, suffix, _ in found if kind == TMP}
            olds = sorted(
                ((entry, suffix) for entry, kind, suffix, _ in found if kind == OLD), key=lambda e: e[0].stat().st_mtime
            )
            if olds:
                old, suffix = olds[-1]
                if suffix in tmps:  # the new copy was complete before the old one was moved aside
                    os.rename(tmps[suffix], path)
                    restored = "finished the interrupted save"
                else:
                    os.rename(old, path)
                    restored = "put the previous version back"
                fsync_path(path.parent)
        removed = 0
        for entry, _, _, live in found:
            if not live and entry.exists():  # a live process's leftover is a save in progress
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
                removed += 1
    except OSError as exc:
        return f"{path} has leftovers of an interrupted save that could not be cleaned ({exc.strerror or exc})"
    if not restored and not removed:
        return None
    what = [restored] if restored else []
    if removed:
        what.append(f"removed {removed} leftover{'s' if removed > 1 else ''} of interrupted saves")
    return f"{path}: {'; '.join(what)}"
