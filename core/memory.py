"""How much memory a new allocation can use now, so that sizes are refused before they are allocated."""

from __future__ import annotations

import os


def available_memory() -> int | None:
    """Bytes a new allocation can use now: MemAvailable (or the free pages where there is no
    /proc/meminfo), capped by the cgroup limit of a container; None where none of them can be read."""
    have = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    have = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if have is None:
        try:
            have = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit != "max":
            with open("/sys/fs/cgroup/memory.current") as f:
                left = int(limit) - int(f.read())
            have = left if have is None else min(have, left)
    except (OSError, ValueError):
        pass
    return have
