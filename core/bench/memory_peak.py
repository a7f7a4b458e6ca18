"""Peak resident memory of this process, for the benchmark's child processes (no other imports)."""

import resource
import sys


def peak_rss_kb() -> int:
    """This process's own peak resident set in KiB: VmHWM on Linux. Not ru_maxrss there: Linux
    carries it over from the parent across fork and exec, so every child of a 160 MiB benchmark
    process would report at least 160 MiB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS
