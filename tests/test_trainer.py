"""Trainer: schedule, determinism, exact resume, divergence, float32 vs float64."""

import math

import numpy as np
import pytest

from tinylm.core import (
    ConfigError,
    Corpus,
    CorpusError,
    ModelConfig,
    TrainConfig,
    Trainer,
    TrainingDiverged,
    load_corpus,
    make_trainer,
)
from tinylm.core.schedule import get_lr

SMALL = dict(n_layer=1, n_head=2, n_embd=16, block_size=16)


def small_trainer(dtype=np.float32, steps=30, **train):
    cfg = TrainConfig(
        **{**dict(batch_size=4, max_steps=steps, eval_interval=10, eval_batches=2, warmup_steps=5), **train}
    )
    return make_trainer(load_corpus("fables"), "char", model_config=ModelConfig(**SMALL), train_config=cfg, dtype=dtype)


def test_lr_schedule_warmup_then_cosine_to_floor():
    lrs = [get_lr(s, 1e-3, 1e-4, 10, 100) for s in range(120)]
    assert lrs[0] == pytest.approx(1e-3 / 11)
    assert lrs[9] == pytest.approx(1e-3 * 10 / 11)
    assert lrs[10] == pytest.approx(1e-3)
    assert lrs[55] == pytest.approx(1e-4 + 0.5 * (1 + math.cos(math.pi * 0.5)) * 9e-4)
    assert lrs[100] == pytest.approx(1e-4) and lrs[119] == 1e-4
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def test_loss_decreases_and_metrics_are_reported():
    tr = small_trainer(steps=60, learning_rate=3e-3)
    history = [tr.step() for _ in range(60)]
    assert history[-1].train_loss < history[0].train_loss - 0.5
    evals = [m for m in history if m.val_loss is not None]
    assert [m.step for m in evals] == [10, 20, 30, 40, 50, 60]
    assert 0.0 <= evals[-1].accuracy <= 1.0 and evals[-1].accuracy > 0.1
    assert tr.done and history[-1].eta_s == 0
    assert all(m.tokens_per_s > 0 and m.grad_norm > 0 for m in history)


def test_same_seed_same_losses_and_different_seed_differs():
    a = [small_trainer().step().train_loss for _ in range(1)]
    ta, tb, tc = small_trainer(), small_trainer(), small_trainer(seed=7)
    la = [ta.step().train_loss for _ in range(8)]
    lb = [tb.step().train_loss for _ in range(8)]
    lc = [tc.step().train_loss for _ in range(8)]
    assert la == lb and la != lc and a[0] == la[0]


def test_resume_continues_with_the_same_losses(tmp_path):
    full = small_trainer(steps=20)
    straight = [full.step().train_loss for _ in range(20)]
    first = small_trainer(steps=20)
    for _ in range(8):
        first.step()
    first.save(tmp_path / "ckpt")
    resumed = Trainer.resume(tmp_path / "ckpt")
    assert resumed.step_count == 8 and len(resumed.history) == 8
    rest = [resumed.step() for _ in range(12)]
    np.testing.assert_allclose([m.train_loss for m in rest], straight[8:], rtol=1e-6)
    assert rest[-1].val_loss == pytest.approx(full.history[-1].val_loss, rel=1e-6)


def test_resume_with_dropout_is_exact(tmp_path):
    def make():
        return make_trainer(
            load_corpus("fables"),
            "char",
            model_config=ModelConfig(**SMALL, dropout=0.2),
            train_config=TrainConfig(batch_size=4, max_steps=10, eval_interval=5, eval_batches=1),
        )

    full = make()
    straight = [full.step().train_loss for _ in range(10)]
    part = make()
    for _ in range(4):
        part.step()
    part.save(tmp_path / "c")
    resumed = Trainer.resume(tmp_path / "c")
    np.testing.assert_allclose([resumed.step().train_loss for _ in range(6)], straight[4:], rtol=1e-6)


def test_float32_and_float64_agree_on_first_20_losses():
    l32 = [m.train_loss for m in (small_trainer(np.float32).step() for _ in range(20))]
    l64 = [m.train_loss for m in (small_trainer(np.float64).step() for _ in range(20))]
    np.testing.assert_allclose(l32, l64, rtol=1e-4)


def test_divergence_stops_and_keeps_last_good_weights():
    tr = small_trainer()
    tr.step()
    good = tr.model.flat.copy()
    tr.model.params["transformer.ln_f.weight"][0] = np.nan
    good[tr.model.layout.offsets["transformer.ln_f.weight"]] = np.nan
    with pytest.raises(TrainingDiverged, match="diverged at step 2"):
        tr.step()
    np.testing.assert_array_equal(tr.model.flat, good)
    assert tr.step_count == 1


def test_weight_decay_only_touches_2d_weights():
    tr = small_trainer(weight_decay=0.5, learning_rate=1e-2)
    model = tr.model
    model.forward(tr.x, tr.y)
    names_2d = [n for n, s in model.layout.shapes.items() if len(s) == 2]
    assert model.layout.n_decay == sum(model.params[n].size for n in names_2d)
    assert all(model.layout.offsets[n] < model.layout.n_decay for n in names_2d)


def test_corpus_shorter_than_context_is_refused():
    with pytest.raises(CorpusError, match="fewer than one context window"):
        make_trainer(Corpus.from_text("tiny text"), "char", model_config=ModelConfig(**SMALL))


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("learning_rate", 0.0, "learning_rate must be a positive"),
        ("batch_size", 0, "batch_size must be a positive"),
        ("max_steps", -5, "max_steps must be a positive"),
        ("grad_clip", -1.0, "grad_clip"),
    ],
)
def test_invalid_train_config_names_the_problem(field, value, words):
    with pytest.raises(ConfigError, match=words):
        TrainConfig(**{field: value}).validate()


# ---------------------------------------------------------------- data parallelism (core/parallel.py)


def test_row_shards_give_the_one_piece_losses_gradients_and_evaluation():
    """Split into 2 or 3 uneven shards on threads, a float64 run matches the batch run in one piece."""
    from threadpoolctl import threadpool_info

    whole = small_trainer(np.float64, steps=6, batch_size=5, eval_interval=3)
    whole.threads = 1
    blas_before = [lib["num_threads"] for lib in threadpool_info()]
    for threads, bounds in ((2, [(0, 2), (2, 5)]), (3, [(0, 2), (2, 3), (3, 5)])):
        split = small_trainer(np.float64, steps=6, batch_size=5, eval_interval=3)
        split.threads, split.min_shard_flops = threads, 0
        for step in range(6):
            a, b = whole.step() if threads == 2 else whole.history[step], split.step()
            assert b.train_loss == pytest.approx(a.train_loss, rel=1e-12, abs=0)
            assert b.grad_norm == pytest.approx(a.grad_norm, rel=1e-10)
            if a.val_loss is not None:
                assert b.val_loss == pytest.approx(a.val_loss, rel=1e-12) and b.accuracy == a.accuracy
        assert [(r.start, r.stop) for r in split._shards.rows] == bounds
        np.testing.assert_allclose(split.model.flat, whole.model.flat, rtol=1e-10, atol=1e-13)
        # replicas share the weights, not copies of them
        assert all(np.shares_memory(m.flat, split.model.flat) for m in split._shards.models)
    assert [lib["num_threads"] for lib in threadpool_info()] == blas_before  # BLAS threads restored


def test_row_shards_with_dropout_resume_exactly(tmp_path):
    def make():
        tr = make_trainer(
            load_corpus("fables"),
            "char",
            model_config=ModelConfig(**SMALL, dropout=0.2),
            train_config=TrainConfig(batch_size=4, max_steps=10, eval_interval=5, eval_batches=1),
        )
        tr.threads, tr.min_shard_flops = 2, 0
        return tr

    full = make()
    straight = [full.step().train_loss for _ in range(10)]
    assert len(full._shards) == 2
    part = make()
    for _ in range(4):
        part.step()
    part.save(tmp_path / "c")
    resumed = Trainer.resume(tmp_path / "c")
    resumed.threads, resumed.min_shard_flops = 2, 0
    np.testing.assert_allclose([resumed.step().train_loss for _ in range(6)], straight[4:], rtol=1e-6)


def test_small_models_are_not_split():
    from tinylm.core.parallel import shard_count

    tr = small_trainer()
    assert shard_count(tr.model, 4, threads=2) == 1  # ~1 MFLOP a step: a thread hand-over costs more
    baby = ModelConfig(n_layer=4, n_head=4, n_embd=128, block_size=64, vocab_size=65)
    from tinylm.core import GPT

    assert shard_count(GPT(baby), 12, threads=2) == 2 and shard_count(GPT(baby), 12, threads=1) == 1


@pytest.mark.parametrize("dropout", [0.0, 0.1])
@pytest.mark.parametrize("shape", [{}, dict(n_head=4, n_embd=8)], ids=["datt-shared", "datt-own"])
def test_memory_estimate_is_what_training_allocates(dropout, shape):
    """The estimate the dashboard shows equals the float buffers a step and an evaluation allocate."""
    from tinylm.core import memory_estimate

    tr = make_trainer(
        load_corpus("fables"),
        "char",
        model_config=ModelConfig(**{**SMALL, **shape}, dropout=dropout),
        train_config=TrainConfig(batch_size=3, max_steps=2, eval_interval=1, eval_batches=1),
    )
    tr.threads = 1
    tr.step()
    m = tr.model
    arrays = [m.flat, m.grad_flat, tr.m, tr.v]
    for acts in m._acts.values():
        arrays += list(vars(acts).values())
        if acts._grad_buffers is not None:
            arrays += list(vars(acts._grad_buffers).values())
    owned = {id(a): a for a in arrays if isinstance(a, np.ndarray) and a.base is None and a.dtype.kind == "f"}
    assert sum(a.nbytes for a in owned.values()) == memory_estimate(m.config, tr.config)


def test_corpus_ids_are_kept_compact_and_checked():
    from tinylm.core.trainer import compact_ids

    ids = np.array([0, 5, 64], dtype=np.int64)
    small = compact_ids(ids, 65)
    assert small.dtype == np.uint16 and small.tolist() == [0, 5, 64]
    assert compact_ids(ids, 70_000).dtype == np.int32
    with pytest.raises(CorpusError, match=r"in \[0, 64\).*0\.\.64"):
        compact_ids(ids, 64)  # would wrap or index past the embedding table
    with pytest.raises(CorpusError, match="in \\[0, 65\\)"):
        compact_ids(np.array([-1, 3]), 65)
    tr = small_trainer()
    assert tr.train_ids.dtype == np.uint16 and tr.step().train_loss > 0


def test_released_buffers_are_made_again_and_training_goes_on_identically():
    a, b = small_trainer(steps=6), small_trainer(steps=6)
    a.threads = b.threads = 2
    a.min_shard_flops = b.min_shard_flops = 0
    for step in range(6):
        if step in (2, 4):
            b.release_buffers()
            assert b.model._acts == {} and b.model.grad_flat is None and b._shards is None
        assert b.step().train_loss == a.step().train_loss
    np.testing.assert_array_equal(a.model.flat, b.model.flat)


def test_a_failing_shard_leaves_no_shard_running():
    """An error in one shard reaches the caller only after every other shard has finished."""
    import threading
    import time

    tr = small_trainer()
    tr.threads, tr.min_shard_flops = 2, 0
    shards = tr.shards()
    finished = threading.Event()

    def work(i):
        if i == 0:
            raise ValueError("shard 0 failed")
        time.sleep(0.2)
        finished.set()

    with pytest.raises(ValueError, match="shard 0 failed"):
        shards.map(work)
    assert finished.is_set()
    assert tr.step().train_loss > 0  # and the trainer goes on
