"""The app's kernel warm-up compiles everything its default run calls (so no compile freezes the UI later)."""

import os
import subprocess
import sys

import pytest

CHECK = r"""
import numba, numpy as np
from tinylm.core import Sampling, limit_threads
from tinylm.tui.startup import build_trainer
from tinylm.core import load_corpus
import tinylm.kernels as K
from tinylm.kernels import (attention, crossentropy, decode, dropout, encoder, gelu, layernorm, matmul, optim,
                            residual, softmax)

limit_threads(2)
trainer = build_trainer(load_corpus("fables"))
assert trainer.shards() is not None  # the default run trains in row shards on 2 threads
for _ in range(2):
    trainer.step()
trainer.evaluate()
trainer.model.trace("the fox")
next(iter(trainer.model.generate("the", Sampling(seed=0), max_new_tokens=3)))
misses = {}
for mod in (attention, crossentropy, decode, dropout, encoder, gelu, layernorm, matmul, optim, residual, softmax):
    for name, obj in vars(mod).items():
        for d in (getattr(obj, "serial", None), getattr(obj, "parallel", None), obj):
            if isinstance(d, numba.core.registry.CPUDispatcher) and d.stats.cache_misses:
                misses[d.py_func.__qualname__] = sum(d.stats.cache_misses.values())
print(misses)
"""


@pytest.mark.slow  # compiles every kernel
@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="nothing is compiled without JIT")
def test_warm_up_compiles_what_the_default_run_calls(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), NUMBA_NUM_THREADS="2")
    code = (
        "from tinylm.core import parallel_allowed; from tinylm.kernels import flags\n"
        "before = flags.PARALLEL_MIN_WORK, parallel_allowed()\n"
        "from tinylm.tui.startup import warm_up; warm_up()\n"
        "print(before == (flags.PARALLEL_MIN_WORK, parallel_allowed()))"
    )
    warm = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900)
    assert warm.returncode == 0, warm.stderr[-2000:]
    assert warm.stdout.split() == ["True"]  # the app runs it in its own process too: settings put back
    run = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "{}"  # no kernel compiled after the warm-up
