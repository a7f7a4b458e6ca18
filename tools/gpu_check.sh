#!/usr/bin/env bash
# The GPU path on a machine with an NVIDIA GPU, in one go: installs the cuda extra (and PyTorch's
# CUDA build for the comparison), runs the CUDA tests without the simulator, times
# `tinylm bench --device cuda` against PyTorch on the same GPU (float32, TF32 off) and tinylm's
# GPT-2-small-shaped greedy generation on the GPU, and writes everything to one results file.
#
#   bash tools/gpu_check.sh [RESULTS]      (default gpu_check_results.txt; run from the repository root)
#
# About 10 minutes on a recent GPU. Nothing here is needed without a GPU: CI runs the simulator tests.
set -u
cd "$(dirname "$0")/.."
OUT="${1:-gpu_check_results.txt}"
: > "$OUT"
say() { echo "== $*" | tee -a "$OUT"; }
run() { say "\$ $*"; "$@" 2>&1 | tee -a "$OUT"; echo "(exit ${PIPESTATUS[0]})" | tee -a "$OUT"; }
# a step that hangs (a driver waiting forever) must not eat the whole session
limited() { local seconds=$1; shift; run timeout "$seconds" "$@"; }

say "date $(date -u +%FT%TZ), code $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
run nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv

say "install: the cuda extra, the test tools, PyTorch with CUDA"
limited 900 python3 -m pip install -q -e '.[cuda,test]' torch
run python3 -c "import numba, numba.cuda, torch; print('numba', numba.__version__, '| torch', torch.__version__, torch.cuda.is_available())"
run python3 -c "from tinylm.kernels.backend import cuda_missing; print(cuda_missing() or 'GPU ready')"

say "tests on the GPU, no simulator: every kernel against the numpy reference, PTX compilation,"
say "3 training steps + resume + generation + trace against the CPU, finite differences"
unset NUMBA_ENABLE_CUDASIM
limited 900 python3 -m pytest -q -p no:cacheprovider tests/test_cuda_kernels.py tests/test_cuda_model.py \
    tests/test_cli_device.py -k "not sim"

say "bench: the training configurations on the GPU, tinylm against PyTorch (TF32 off)"
limited 1200 tinylm bench --device cuda --configs baby,small --quick --no-cold-start
say "bench: the same configurations on 2 CPU cores, for the GPU/CPU ratio"
limited 1200 tinylm bench --device cpu --threads 2 --configs small --quick --no-torch --no-cold-start

say "GPT-2 small's shape (124M, random weights): greedy generation with the KV cache on the GPU"
timeout 900 python3 - <<'PY' 2>&1 | tee -a "$OUT"
import time

import numpy as np

from tinylm.core import GPT, ModelConfig, Sampling, get_kernels

cfg = ModelConfig(n_layer=12, n_head=12, n_embd=768, block_size=1024, vocab_size=50257)
model = GPT(cfg, seed=0, kernels=get_kernels("cuda"))
prompt = np.arange(16) * 97 % cfg.vocab_size
list(model.generate(prompt, Sampling(greedy=True), 8))  # compiles the kernels
for n in (64, 256):
    started = time.perf_counter()
    got = sum(1 for _ in model.generate(prompt, Sampling(greedy=True), n))
    seconds = time.perf_counter() - started
    print(f"gpt2-small greedy, {got} tokens after 16: {seconds:.2f} s, {got / seconds:.1f} tokens/s")
cpu = model.on("cpu")
ids_gpu = [s.id for s in model.generate(prompt, Sampling(greedy=True), 32)]
ids_cpu = [s.id for s in cpu.generate(prompt, Sampling(greedy=True), 32)]
print("same 32 greedy tokens as the CPU:", ids_gpu == ids_cpu)
PY

say "done: results in $OUT"
