"""The model runs on the kernel namespace it is given, and the thread and lock settings are the core
API's: the CPU namespace asked for by name computes exactly what the default does, a namespace passed
in sees every kernel call of training, evaluation, trace and generation, and settings are put back."""

import collections
import threading

import numpy as np
import pytest

import tinylm.kernels as cpu_kernels
from tinylm.core import (
    ModelConfig,
    Sampling,
    TrainConfig,
    get_kernels,
    kernel_settings,
    load_corpus,
    make_trainer,
    parallel_allowed,
)
from tinylm.core.threads import blas_controllers
from tinylm.kernels import flags

MODEL = dict(n_layer=2, n_head=2, n_embd=16, block_size=16, dropout=0.1)


class RecordingKernels:
    """A kernel namespace that counts the calls it passes on to another one."""

    def __init__(self, inner):
        self.inner, self.calls, self._lock = inner, collections.Counter(), threading.Lock()

    def __getattr__(self, name):
        kernel = getattr(self.inner, name)
        if not callable(kernel):  # DEVICE: a value, not a call
            return kernel

        def call(*args):
            with self._lock:
                self.calls[name] += 1
            return kernel(*args)

        return call


def run(kernels, threads=1):
    tr = make_trainer(
        load_corpus("fables"),
        "char",
        model_config=ModelConfig(**MODEL),
        train_config=TrainConfig(batch_size=4, max_steps=4, eval_interval=2, eval_batches=1, seed=3),
        kernels=kernels,
    )
    tr.threads, tr.min_shard_flops = threads, 0
    losses = [tr.step() for _ in range(4)]
    trace = tr.model.trace("the fox")
    before = collections.Counter(getattr(kernels, "calls", {}))  # training's history samples decode too
    tokens = [s.id for s in tr.model.generate("the", Sampling(seed=1), max_new_tokens=5)]
    generation_calls = collections.Counter(getattr(kernels, "calls", {})) - before
    return tr, losses, trace, tokens, generation_calls


def test_the_cpu_namespace_by_name_is_the_default():
    assert get_kernels("cpu") is cpu_kernels
    default, named = run(None), run(get_kernels("cpu"))
    assert default[0].model.kernels is cpu_kernels
    assert [m.train_loss for m in default[1]] == [m.train_loss for m in named[1]]
    np.testing.assert_array_equal(default[0].model.flat, named[0].model.flat)
    np.testing.assert_array_equal(default[2]["probs"], named[2]["probs"])
    assert default[3] == named[3]


@pytest.mark.parametrize("threads", [1, 2])
def test_a_namespace_passed_in_sees_every_kernel_call(threads):
    recording = RecordingKernels(cpu_kernels)
    tr, losses, trace, tokens, generation_calls = run(recording, threads)
    plain = run(None, threads)
    assert [m.train_loss for m in losses] == [m.train_loss for m in plain[1]]  # same numbers
    np.testing.assert_array_equal(tr.model.flat, plain[0].model.flat)
    assert tokens == plain[3]
    if threads == 2:
        assert len(tr._shards) == 2 and all(m.kernels is recording for m in tr._shards.models)
    # buffers; forward, backward (with dropout and recomputation), optimizer, evaluation, trace, generation
    expected = {
        "zeros",
        "gather_windows",
        "encoder_forward",
        "layernorm_forward",
        "matmul_forward",
        "attention_forward",
        "gelu_forward",
        "residual_forward",
        "dropout_forward",
        "lm_head_forward",
        "crossentropy_forward",
        "crossentropy_backward",
        "lm_head_backward",
        "layernorm_backward",
        "matmul_backward",
        "gelu_backward_inplace",
        "attention_backward",
        "dropout_backward",
        "encoder_backward",
        "grad_norm",
        "adamw_update",
        "count_correct",
        "softmax_forward",
        "decode_step",
    }
    assert expected <= set(recording.calls), expected - set(recording.calls)
    assert generation_calls["decode_step"] == 4  # 5 tokens: the first from the prompt's forward pass
    assert recording.calls["adamw_update"] == 4


def test_kernel_settings_are_put_back():
    # the BLAS libraries loaded when tinylm first looked (a library loaded later, such as torch's own in
    # another test of this process, is not tinylm's to cap)
    blas = lambda: [lib.get_num_threads() for lib in blas_controllers()]  # noqa: E731
    before = parallel_allowed(), flags.PARALLEL_MIN_WORK, blas()
    with kernel_settings(parallel=not before[0], min_parallel_work=0, blas_threads=1):
        assert parallel_allowed() is (not before[0]) and flags.PARALLEL_MIN_WORK == 0
        assert set(blas()) <= {1}
        seen = []
        other = threading.Thread(target=lambda: seen.append(parallel_allowed()))
        other.start()
        other.join()
        assert seen == [before[0]]  # the parallel switch is this thread's alone
    assert (parallel_allowed(), flags.PARALLEL_MIN_WORK, blas()) == before
    with pytest.raises(RuntimeError), kernel_settings(min_parallel_work=7):
        raise RuntimeError("inside")
    assert flags.PARALLEL_MIN_WORK == before[1]


def test_the_model_takes_the_lock_it_is_given():
    class CountingLock:
        def __init__(self):
            self.inner, self.entered = threading.RLock(), 0

        def __enter__(self):
            self.entered += 1
            return self.inner.__enter__()

        def __exit__(self, *exc):
            return self.inner.__exit__(*exc)

    tr = run(None)[0]
    lock = CountingLock()
    tr.model.use_lock(lock)
    tr.model.trace("the")
    tr.step()
    assert lock.entered >= 2 and tr.model.lock is lock
    assert tr.model.replica().lock is not lock  # a replica serialises its own buffers
