"""Reading the files a user names: regular files only, never more than a stated size.

A path can name a FIFO (opening it for reading waits for a writer forever), a device such as
/dev/zero (endless bytes) or a file far larger than memory; each is refused in one line instead.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MIB = 1 << 20
MAX_JSON_BYTES = 256 * MIB  # a checkpoint's JSON files; GPT-2's tokenizer.json is 1.4 MiB


def read_json_text(path: str | os.PathLike) -> str:
    """A checkpoint's JSON file as text (FileNotFoundError, NotReadable, or UnicodeDecodeError)."""
    return read_limited(path, MAX_JSON_BYTES).decode("utf-8")


_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


class NotReadable(Exception):
    """Why a file cannot be read, in words that finish 'PATH ...' (the caller adds what to do)."""


def size_words(n: int) -> str:
    """1.5 GiB, 64 MiB, 12 KiB, 7 bytes."""
    for div, suffix in ((1 << 30, "GiB"), (MIB, "MiB"), (1 << 10, "KiB")):
        if n >= div:
            value = n / div
            return f"{value:.0f} {suffix}" if value == int(value) else f"{value:.1f} {suffix}"
    return f"{n} bytes"


def open_regular(path: str | os.PathLike):
    """A regular file opened for binary reading (FileNotFoundError, or NotReadable for anything else)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise NotReadable(f"cannot be read ({exc.strerror or exc})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotReadable(f"is {_KINDS.get(stat.S_IFMT(mode), 'not a regular file')}, not a regular file")
    return os.fdopen(fd, "rb")


def read_limited(path: str | os.PathLike, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; NotReadable (or FileNotFoundError) otherwise.

    Opened without blocking, so a FIFO is seen for what it is instead of waiting for a writer; the
    kind is checked on the open descriptor, so a symbolic link to /dev/zero is caught too."""
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise NotReadable(f"cannot be read ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
            raise NotReadable(f"is {kind}, not a regular file")
        if info.st_size > limit:
            raise NotReadable(f"is {size_words(info.st_size)}, more than the limit of {size_words(limit)}")
        chunks, total = [], 0
        while total <= limit:  # a file that grows while it is read still stops at the limit
            chunk = os.read(fd, min(limit + 1 - total, 16 * MIB))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise NotReadable(f"is more than the limit of {size_words(limit)}")
        return b"".join(chunks)
    except OSError as exc:
        raise NotReadable(f"cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
