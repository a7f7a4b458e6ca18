"""Soak test: drive `tinylm-tui` in tmux (train, stream text, visit every screen) for a given time and
sample the app's resident memory, to show that a long session does not grow.

    python tools/soak.py --minutes 15 --csv soak.csv

Prints one line per sample and a summary: memory after the warm-up, at the end, the largest, and the
growth from the first to the last minutes (medians, so one busy sample does not decide it).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (the app is a child of the pane's shell)."""
    total = 0
    for p in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def children(pid: int) -> list[int]:
    try:
        kids = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return kids + [g for k in kids for g in children(k)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="how long to run (default 60)")
    parser.add_argument("--size", default="80x24", help="terminal size, e.g. 200x60")
    parser.add_argument("--threads", default="1", help="training threads passed to tinylm-tui")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between memory samples")
    parser.add_argument("--csv", help="write the samples (seconds, KiB, screen) here")
    args = parser.parse_args(argv)
    width, height = args.size.split("x")
    name = f"tinylm-soak-{uuid.uuid4().hex[:8]}"
    workdir = tempfile.mkdtemp(prefix="tinylm-soak-")
    python = shlex.quote(sys.executable)
    command = f"env -u COLORTERM TERM=xterm-256color {python} -m tinylm.tui --threads {args.threads}"
    tmux("new-session", "-d", "-s", name, "-x", width, "-y", height, "-c", workdir, command)
    pid = int(tmux("list-panes", "-t", name, "-F", "#{pane_pid}").split()[0])

    def keys(*names: str) -> None:
        for key in names:
            tmux("send-keys", "-t", name, key)
            time.sleep(0.2)

    def wait_for(text: str, timeout: float = 300) -> None:
        end = time.monotonic() + timeout
        while text not in tmux("capture-pane", "-p", "-t", name):
            if time.monotonic() > end:
                raise SystemExit(f"soak: {text!r} did not appear")
            time.sleep(0.2)

    samples: list[tuple[float, int, str]] = []
    try:
        wait_for("ready")
        start = time.monotonic()
        end = start + 60 * args.minutes
        # one cycle: train (t continues a finished run), stream text, visit every screen
        cycle = [("2", "t"), ("5", "Space"), ("Space", "3"), ("4", "n"), ("6",), ("2",)]
        next_sample, step = start, 0
        while time.monotonic() < end:
            if time.monotonic() >= next_sample:
                kib = rss_kib(pid)
                screen = tmux("capture-pane", "-p", "-t", name)
                if "Traceback" in screen or not tmux("list-panes", "-t", name):
                    raise SystemExit("soak: the app died:\n" + screen)
                samples.append((time.monotonic() - start, kib, cycle[step % len(cycle)][0]))
                print(f"{samples[-1][0]:7.0f} s  {kib / 1024:7.1f} MiB", flush=True)
                next_sample += args.every
            keys(*cycle[step % len(cycle)])
            step += 1
            time.sleep(4.0)
        keys("q")
        time.sleep(1)
        keys("n")  # the question about unsaved training: quit without saving
    finally:
        tmux("kill-session", "-t", name)
    if args.csv:
        with open(args.csv, "w") as out:
            out.write("seconds,rss_kib,screen\n")
            out.writelines(f"{t:.1f},{k},{s}\n" for t, k, s in samples)
    warm = [k for t, k, _ in samples if t >= 60]  # after the first minute: kernels loaded, first run going
    if len(warm) < 4:
        print("soak: too short to judge growth (run at least 2 minutes)")
        return 0
    quarter = max(len(warm) // 4, 1)
    first, last = statistics.median(warm[:quarter]), statistics.median(warm[-quarter:])
    print(
        f"summary: {args.minutes:g} min at {args.size}, {len(samples)} samples; after warm-up {first / 1024:.1f} MiB, "
        f"end {last / 1024:.1f} MiB, largest {max(k for _, k, _ in samples) / 1024:.1f} MiB, "
        f"growth {100 * (last - first) / first:+.1f}% (first vs last quarter, medians)"
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
