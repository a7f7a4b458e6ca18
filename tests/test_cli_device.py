"""`--device cpu|cuda` on train, generate, inspect and bench: one line and exit 2 naming what is
missing when no GPU can be used; under numba's CUDA simulator the commands run on the CUDA kernels
and print what the CPU prints."""

import os
import re
import subprocess
import sys

import pytest

from tinylm.core.cli.main import main

EXTRA = "pip install 'tinylm-tui[cuda]'"
COMMANDS = [
    ["train", "--steps", "1"],
    ["generate", "no-such-checkpoint"],
    ["inspect", "no-such-checkpoint", "--prompt", "a"],
    ["bench", "--quick", "--no-torch"],
]


def _gpu_or_simulator() -> bool:
    from numba import config, cuda

    return bool(config.ENABLE_CUDASIM) or cuda.is_available()


def _child_env(sim: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_ENABLE_CUDASIM", "TINYLM_CUDA_"))}
    if sim:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    return env


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: a[0])
def test_device_cuda_without_a_gpu_says_what_is_missing_in_one_line(argv, capsys, tmp_path, monkeypatch):
    if _gpu_or_simulator():
        pytest.skip("a CUDA GPU (or the simulator) is here: nothing is missing")
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--device", "cuda"]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tinylm: error: --device cuda: ")
    assert "NVIDIA" in lines[0] and (EXTRA in lines[0] or "--device cpu" in lines[0]), lines[0]
    assert not any(tmp_path.iterdir())  # nothing trained, nothing saved


NO_NUMBA_CUDA = """
import sys
sys.modules["numba.cuda"] = None  # a numba without any CUDA target
from tinylm.core.cli.main import main
raise SystemExit(main(["train", "--steps", "1", "--device", "cuda"]))
"""


def test_device_cuda_without_numba_cuda_names_the_extra(tmp_path):
    res = subprocess.run(
        [sys.executable, "-c", NO_NUMBA_CUDA], env=_child_env(False), cwd=tmp_path, capture_output=True, text=True
    )
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinylm: error: --device cuda: this numba has no CUDA target")
    assert EXTRA in lines[0]


def test_device_cpu_is_the_default_and_accepted(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--text", "a bad cab, a dab. " * 12, "--layers", "1", "--embd", "8", "--heads", "2"]
    args += ["--context", "8", "--batch-size", "2", "--steps", "2", "--quiet", "--out", str(out), "--device", "cpu"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["generate", str(out), "--greedy", "--tokens", "3", "--prompt", "ab", "--device", "cpu"]) == 0


def _numbers_close(a: str, b: str, tol: float = 2e-3) -> bool:
    """The same text with the same numbers, each printed number within tol (last-digit rounding)."""
    pattern = r"[-+]?\d+\.\d+"
    if re.sub(pattern, "#", a) != re.sub(pattern, "#", b):
        return False
    return all(abs(float(x) - float(y)) <= tol for x, y in zip(re.findall(pattern, a), re.findall(pattern, b)))


@pytest.mark.slow  # numba's CUDA simulator
def test_generate_and_inspect_on_cuda_under_the_simulator_print_what_the_cpu_prints(tmp_path):
    ckpt = tmp_path / "run"
    args = ["train", "--text", "a bad cab, a dab. " * 12, "--layers", "1", "--embd", "8", "--heads", "2"]
    args += ["--context", "8", "--batch-size", "2", "--steps", "3", "--quiet", "--out", str(ckpt)]
    assert main(args) == 0  # trained on the CPU: the checkpoint opens on either device

    def tinylm(*argv, device):
        cmd = [sys.executable, "-m", "tinylm.core.cli.main", *argv, "--device", device]
        return subprocess.run(cmd, env=_child_env(True), capture_output=True, text=True, timeout=600)

    for argv in (["generate", str(ckpt), "--greedy", "--tokens", "4", "--prompt", "ab"],
                 ["inspect", str(ckpt), "--prompt", "a bad"]):  # fmt: skip
        cpu, gpu = tinylm(*argv, device="cpu"), tinylm(*argv, device="cuda")
        assert cpu.returncode == 0 and gpu.returncode == 0, (cpu.stderr, gpu.stderr)
        assert "numba's CUDA simulator" in gpu.stderr and "simulator" not in cpu.stderr
        assert _numbers_close(cpu.stdout, gpu.stdout), (cpu.stdout, gpu.stdout)
    refused = tinylm("inspect", str(ckpt), "--prompt", "a", "--ablate", "0.1", device="cuda")
    assert refused.returncode == 2 and "run on the CPU only" in refused.stderr
