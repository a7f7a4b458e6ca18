"""Data parallelism inside one process: a batch split into row shards, one thread per shard.

Why not threads inside each operation: at nanoGPT's CPU size (B*T = 768 rows, C = 128) every
kernel is a few hundred microseconds, so a thread pool inside each one hands work between cores
~200 times per step, and BLAS's and Numba's pools take turns on the same cores. Two half batches
keep each core on its own chain of kernels for the whole step and meet once, to add gradients.
Every kernel releases the GIL (Numba's nogil, BLAS through np.matmul), so the shards run at once.

Each shard is a `GPT.replica()`: the weights are shared, gradients and activations are its own.
A shard of n of the batch's B rows back-propagates n/B times its mean loss, so the shards'
gradients add up to the gradient of the whole batch's mean loss.
"""

from __future__ import annotations

import functools
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager

import numba
import numpy as np

from tinylm.kernels.backend import get_kernels
from tinylm.kernels.flags import allow_parallel

from .config import MAX_SEED
from .threads import blas_controllers, kernel_settings, parallel_allowed

# A shard must be worth at least this much work (forward + backward FLOPs) to repay handing it
# to another thread (~50-100 us); smaller steps (the `slm` model's is ~3 MFLOP) stay in one piece.
MIN_SHARD_FLOPS = 50e6

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _serial_worker() -> None:
    allow_parallel(False, this_thread=True)


def _executor() -> ThreadPoolExecutor:
    """One pool for the process; its threads run kernels serially (each is one core's worth)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="tinylm-shard", initializer=_serial_worker)
        return _pool


def shard_count(model, batch_size: int, threads: int, min_flops: float = MIN_SHARD_FLOPS) -> int:
    """How many row shards a training step of this model and batch should run as (1: no split), each
    worth at least min_flops of work (0: as many as there are threads and rows)."""
    cfg = model.config
    step_flops = cfg.flops_per_token() * batch_size * cfg.block_size
    worth = int(step_flops // min_flops) if min_flops > 0 else batch_size
    return max(1, min(threads, batch_size, worth))


class Shards:
    """A model and its replicas, each owning a contiguous block of a batch's rows."""

    def __init__(self, model, n: int, batch_size: int):
        self.models = [model] + [model.replica() for _ in range(n - 1)]
        bounds = np.linspace(0, batch_size, n + 1).round().astype(int)
        self.rows = [slice(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:])]
        self.share = [(r.stop - r.start) / batch_size for r in self.rows]  # n_i / B

    def __len__(self) -> int:
        return len(self.models)

    def map(self, fn) -> list:
        """fn(i) for every shard at once: shard 0 on the calling thread, the rest on the pool, with
        BLAS held to one thread meanwhile (its pool would otherwise put 2 threads on each core)."""
        futures = []
        with kernel_settings(parallel=False, blas_threads=1):
            try:
                futures = [_executor().submit(fn, i) for i in range(1, len(self))]
                first = fn(0)
                return [first] + [f.result() for f in futures]
            finally:
                wait(futures)  # if shard 0 failed (or Ctrl-C), the others must not outlive this step

    def train(self, x: np.ndarray, y: np.ndarray, dropout_rng: np.random.Generator | None) -> float:
        """Forward and backward of the batch (x, y) (B, T); the whole batch's mean loss is returned
        and its gradient left in the first model's grads."""
        # one generator per shard, drawn from the trainer's so that a resumed run repeats its masks
        rngs = (
            [np.random.default_rng(s) for s in dropout_rng.integers(0, MAX_SEED, size=len(self))]
            if dropout_rng is not None
            else [None] * len(self)
        )

        def run(i):
            model, rows = self.models[i], self.rows[i]
            loss = model.forward(x[rows], y[rows], dropout_rng=rngs[i])
            model.backward(loss_scale=self.share[i])
            return loss

        losses = self.map(run)
        add_inplace = self.models[0].kernels.add_inplace
        grad = self.models[0].grad_flat
        for replica in self.models[1:]:
            add_inplace(grad, replica.grad_flat)
        return sum(loss * share for loss, share in zip(losses, self.share))

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        """Mean loss over the batch (x, y) and how many next tokens the model ranks first."""

        def run(i):
            model, rows = self.models[i], self.rows[i]
            loss = model.forward(x[rows], y[rows])
            a = model.last_activations
            return loss, model.kernels.count_correct(a.logits, a.targets.reshape(-1))

        results = self.map(run)
        loss = sum(r[0] * share for r, share in zip(results, self.share))
        return loss, sum(r[1] for r in results)


# Weights from which an inference pass (a trace) splits its products across threads: below, the
# products are too small to repay a hand-off to another thread (~30-50 us each, ~50 per pass).
SPLIT_MIN_BYTES = 32 << 20


@functools.lru_cache(maxsize=256)
def _split_bounds(n: int, parts: int) -> tuple[int, ...]:
    """parts + 1 even cut points of [0, n), made once per shape (a trace asks ~50 times: 4 ms on numpy)."""
    return tuple(int(b) for b in np.linspace(0, n, parts + 1).round())


class ColumnSplit:
    """Matrix-vector products split by output columns, one block per thread (the calling thread and
    the shard pool), each through BLAS held to one thread.

    For decoding a large model, whose step is bound by reading the weights: two cores read them
    faster than one. BLAS's own threads did worse on this 2-core machine while other processes ran:
    they spin-wait for each other, and a GPT-2 small token took 300 ms instead of 73 ms on one
    thread (load 7); blocks handed to pool threads cost at worst a wake-up each.
    Use as a context manager around a run of products (it holds BLAS to one thread meanwhile)."""

    def __init__(self, parts: int):
        self.parts = max(1, int(parts))
        self._saved: list[int] = []

    def __enter__(self) -> ColumnSplit:
        self._blas = blas_controllers()
        self._saved = [lib.get_num_threads() for lib in self._blas]
        for lib in self._blas:
            lib.set_num_threads(1)
        return self

    def __exit__(self, *exc) -> None:
        for lib, n in zip(self._blas, self._saved):
            lib.set_num_threads(n)

    def _run(self, n: int, block) -> None:
        """block(lo, hi) for self.parts ranges covering [0, n): the first here, the rest on the pool."""
        bounds = _split_bounds(n, self.parts)
        futures = [_executor().submit(block, lo, hi) for lo, hi in zip(bounds[1:-1], bounds[2:])]
        try:
            block(0, bounds[1])
        finally:
            for f in futures:
                f.result()

    def matvec(self, out: np.ndarray, x: np.ndarray, w: np.ndarray) -> None:
        """WRITES out (OUT,) = x (IN,) @ w (IN, OUT)."""
        if self.parts == 1:
            np.matmul(x, w, out=out)
        else:
            self._run(out.shape[0], lambda lo, hi: np.matmul(x, w[:, lo:hi], out=out[lo:hi]))

    def matvec_t(self, out: np.ndarray, w: np.ndarray, x: np.ndarray) -> None:
        """WRITES out (V,) = w (V, C) @ x (C,) (the tied LM head: rows of w are the tokens)."""
        if self.parts == 1:
            np.matmul(w, x, out=out)
        else:
            self._run(out.shape[0], lambda lo, hi: np.matmul(w[lo:hi], x, out=out[lo:hi]))

    def matmul(self, out: np.ndarray, inp: np.ndarray, w: np.ndarray) -> None:
        """WRITES out (N, OUT) = inp (N, IN) @ w (IN, OUT)."""
        if self.parts == 1:
            np.matmul(inp, w, out=out)
        else:
            self._run(out.shape[1], lambda lo, hi: np.matmul(inp, w[:, lo:hi], out=out[:, lo:hi]))

    def matmul_t(self, out: np.ndarray, inp: np.ndarray, w: np.ndarray) -> None:
        """WRITES out (N, V) = inp (N, C) @ w (V, C).T (the tied LM head)."""
        if self.parts == 1:
            np.matmul(inp, w.T, out=out)
        else:
            self._run(out.shape[1], lambda lo, hi: np.matmul(inp, w[lo:hi].T, out=out[:, lo:hi]))


class SplitProducts:
    """A kernel namespace for an inference pass: the forward products (matmul_forward,
    lm_head_forward) split by output columns across threads through a ColumnSplit, every other
    kernel the wrapped namespace's. At 64 tokens BLAS's own threads spin-waited on a busy 2-core
    machine (a GPT-2 small forward took ~1 s against ~0.2 s on one thread)."""

    def __init__(self, kernels, split: ColumnSplit):
        self._kernels, self._split = kernels, split

    def __getattr__(self, name):
        return getattr(self._kernels, name)

    def matmul_forward(self, out, inp, weight, bias) -> None:
        """WRITES out (N, OC) = inp (N, C) @ weight (C, OC) + bias (OC,); bias of shape (0,) means none."""
        self._split.matmul(out, inp, weight)
        if bias.shape[0] > 0:
            out += bias

    def lm_head_forward(self, out, inp, wte) -> None:
        """WRITES out (N, V) = inp (N, C) @ wte (V, C).T."""
        self._split.matmul_t(out, inp, wte)


@contextmanager
def inference_pass(model):
    """The model to run one forward pass without gradients on (a trace, a generation prefill), with
    the threads used the way such a pass needs them: its kernels are too small for BLAS's and
    Numba's thread pools, which spin-wait and wake up around every call (on a busy 2-core machine
    a GPT-2 small trace took 4.2 s at 2 threads against 0.7 s at one, a baby prefill 18 ms a product).
    One thread or another backend: the model as it is. A small model: the model, BLAS held to one
    thread and Numba's kernels serial. A large one (SPLIT_MIN_BYTES): a replica whose products are
    split by columns across the threads (SplitProducts), every other kernel serial on this thread.
    Read what the pass left (last_activations) inside the block."""
    threads = numba.get_num_threads() if parallel_allowed() else 1
    if threads == 1 or model.kernels is not get_kernels("cpu"):
        yield model
    elif model.flat.nbytes < SPLIT_MIN_BYTES:
        with kernel_settings(parallel=False, blas_threads=1):
            yield model
    else:
        twin = model.replica()
        with ColumnSplit(threads) as split, kernel_settings(parallel=False):
            twin.kernels = SplitProducts(model.kernels, split)
            yield twin
