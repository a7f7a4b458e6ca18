"""`tinylm bench`'s child processes: one engine's measurement, and an idle interpreter's memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


class BenchError(RuntimeError):
    """A benchmark child process failed."""


def _child_env(threads: int, **extra) -> dict:
    """The environment of a child: the user's, without what importing tinylm set in this process (each
    engine runs with its own defaults: OMP_WAIT_POLICY=PASSIVE would slow PyTorch's OpenMP loops 2x), and
    the thread count."""
    from tinylm.kernels import ENV_DEFAULTS

    env = {k: v for k, v in os.environ.items() if k not in ENV_DEFAULTS}
    env.update(extra)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    return env


def run_child(engine: str, spec: dict, workdir: Path, **env_extra) -> dict:
    """Run one measurement in a fresh interpreter and return its JSON answer."""
    path = workdir / f"spec-{engine}-{spec['mode']}.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    if engine == "torch":
        cmd = [sys.executable, str(Path(__file__).with_name("torch_gpt.py")), str(path)]
    else:
        cmd = [sys.executable, "-m", "tinylm.core.bench.worker", str(path)]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=_child_env(spec["threads"], **env_extra), timeout=1800
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise BenchError(f"{engine} {spec['mode']} child failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


# Memory is reported in MiB (2^20 bytes), the unit of ru_maxrss / 1024 and of the memory target
# (1 MiB = 1.049 MB).
KIB_TO_MIB = 1 / 1024


def idle_rss_mib(threads: int, modules: str) -> float:
    """Peak resident memory of an interpreter that only imported `modules`."""
    peak = Path(__file__).with_name("memory_peak.py")  # run by path: the torch child must not import tinylm
    code = f"import runpy, {modules}; print(runpy.run_path({str(peak)!r})['peak_rss_kb']())"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_child_env(threads), check=True
    )
    return int(out.stdout.strip()) * KIB_TO_MIB
