"""Training history: the log-spaced schedule, bounded memory, snapshots equal to a fresh trace of the
weights of their step, the fixed-basis embedding map against a float64 SVD, and head descriptions."""

import math

import numpy as np
import pytest

from tinylm.core import GPT, ModelConfig, TrainConfig, load_corpus, make_trainer, reference
from tinylm.core.head_patterns import describe_head, describe_heads, heads_summary, relative_entropy
from tinylm.core.history import (
    MAX_BYTES,
    MIN_SNAPSHOTS,
    HistoryRecorder,
    Snapshot,
    embedding_maps,
    on_schedule,
    thin_index,
)

SMALL = dict(n_layer=2, n_head=2, n_embd=16, block_size=16)


def small_trainer(steps=40, **model):
    cfg = TrainConfig(batch_size=4, max_steps=steps, eval_interval=10, eval_batches=2, warmup_steps=5)
    return make_trainer(load_corpus("fables"), "char", model_config=ModelConfig(**{**SMALL, **model}), train_config=cfg)


def fake(step: int, C: int = 4) -> Snapshot:
    return Snapshot(step, np.zeros((1, 1, 2, 2), np.float32), np.zeros((3, C), np.float32), None, None, None, "")


def test_schedule_is_powers_of_two_and_one_and_a_half_times_them():
    assert [s for s in range(200) if on_schedule(s)] == [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192]
    assert on_schedule(3 << 20) and on_schedule(1 << 30) and not on_schedule(5 << 20) and not on_schedule(-1)


def test_a_run_snapshots_the_schedule_and_its_last_step():
    trainer = small_trainer(steps=40)
    while not trainer.done:
        trainer.step()
    assert trainer.recorder.steps == [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 40]
    shots = trainer.recorder.snapshots()
    by_step = {m.step: m for m in trainer.history}
    assert shots[0].train_loss is None and shots[0].val_loss is None  # before any step
    for s in shots[1:]:
        assert s.train_loss == by_step[s.step].train_loss
        evaluated = [m for m in trainer.history if m.val_loss is not None and m.step <= s.step]
        assert s.val_step == (evaluated[-1].step if evaluated else None)
        assert s.val_loss == (evaluated[-1].val_loss if evaluated else None)


def test_thinning_drops_the_inner_snapshot_closest_to_its_neighbours_on_a_log_scale():
    steps = [0, 1, 2, 3, 4, 6, 8, 100]
    gaps = [math.log1p(steps[i + 1]) - math.log1p(steps[i - 1]) for i in range(1, len(steps) - 1)]
    assert thin_index(steps) == 1 + gaps.index(min(gaps)) == 3  # step 3: 2 and 4 are the closest neighbours


def test_memory_is_bounded_and_the_history_stays_log_spaced():
    rec = HistoryRecorder([0, 1], [0, 1, 2], max_snapshots=8)
    steps = [s for s in range(100_001) if on_schedule(s)] + [100_000]
    for s in steps:
        rec.add(fake(s))
        assert len(rec) <= 8
    kept = rec.steps
    assert len(kept) == 8 and kept[0] == 0 and kept[-1] == 100_000 and kept == sorted(kept)
    logs = np.diff(np.log1p(kept[1:]))  # step 0 aside (log1p(0) = 0 is the origin, not a spacing)
    assert logs.max() / logs.min() < 3  # evenly spread in log steps, not bunched at either end
    assert rec.nbytes == 8 * fake(0).nbytes <= rec.max_nbytes


def test_recorder_size_follows_the_memory_budget():
    big = GPT(ModelConfig(n_layer=12, n_head=12, n_embd=768, block_size=64, vocab_size=1000), None, init=False)
    rec = HistoryRecorder.for_model(big, np.arange(40))
    assert len(rec.probe_ids) == 24 and len(rec.map_ids) == 256
    each = 4 * (12 * 12 * 24 * 24 + 256 * 768) + 4 * 24
    assert rec.max_snapshots == max(MIN_SNAPSHOTS, MAX_BYTES // each) and rec.max_snapshots * each <= MAX_BYTES


def test_snapshot_attention_is_a_fresh_trace_of_the_weights_of_its_step():
    trainer = small_trainer(steps=13)
    model, rec = trainer.model, trainer.recorder
    saved = {0: {n: p.copy() for n, p in model.params.items()}}
    while not trainer.done:
        trainer.step()
        saved[trainer.step_count] = {n: p.copy() for n, p in model.params.items()}
    fresh = GPT(model.config, model.tokenizer, init=False)
    for shot in rec.snapshots():
        for name, value in saved[shot.step].items():
            fresh.params[name][...] = value
        trace = fresh.trace(rec.probe_ids)
        for l in range(model.config.n_layer):
            np.testing.assert_array_equal(shot.attention[l], trace[f"h.{l}.att"], err_msg=f"step {shot.step}")
        ref = reference.forward(saved[shot.step], rec.probe_ids, model.config.n_head)  # its own wpe
        for l in range(model.config.n_layer):
            np.testing.assert_allclose(shot.attention[l], ref[f"h.{l}.att"], rtol=1e-4, atol=2e-5)
        np.testing.assert_array_equal(shot.embedding, saved[shot.step]["transformer.wte.weight"][rec.map_ids])
    assert [s.step for s in rec.snapshots()] == [0, 1, 2, 3, 4, 6, 8, 12, 13]


def test_the_sample_is_the_seeded_continuation_of_the_probe():
    from tinylm.core import Sampling
    from tinylm.core.history import SAMPLE_SEED, SAMPLE_TEMPERATURE, SAMPLE_TOKENS

    trainer = small_trainer(steps=3)
    while not trainer.done:
        trainer.step()
    model, shot = trainer.model, trainer.recorder.snapshots()[-1]
    sampling = Sampling(temperature=SAMPLE_TEMPERATURE, seed=SAMPLE_SEED)
    ids = [g.id for g in model.generate(trainer.recorder.probe_ids[:8], sampling, SAMPLE_TOKENS) if not g.end]
    assert shot.step == 3 and shot.sample == model.tokenizer.decode(ids)


def test_history_leaves_training_exactly_as_it_was():
    with_history, without = small_trainer(steps=12), small_trainer(steps=12)
    without.recorder = None
    for t in (with_history, without):
        while not t.done:
            t.step()
    assert [m.train_loss for m in with_history.history] == [m.train_loss for m in without.history]
    np.testing.assert_array_equal(with_history.model.flat, without.model.flat)


def svd_projection(table: np.ndarray, axes_of: np.ndarray) -> np.ndarray:
    """Reference: the first two PCA coordinates of `table` on the axes of `axes_of`, in float64 with numpy's
    SVD, each axis's sign chosen so that its largest-magnitude loading is positive."""
    ref = axes_of.astype(np.float64) - axes_of.astype(np.float64).mean(0)
    _, _, vt = np.linalg.svd(ref, full_matrices=True)
    for k in range(2):
        if vt[k, np.argmax(np.abs(vt[k]))] < 0:
            vt[k] = -vt[k]
    x = table.astype(np.float64) - table.astype(np.float64).mean(0)
    return x @ vt[:2].T


def test_embedding_map_uses_one_fixed_basis_checked_against_a_float64_svd():
    rng = np.random.default_rng(3)
    tables = [rng.normal(size=(30, 8)).astype(np.float32) * (1 + k) for k in range(4)]
    tables[2][:, 0] += np.linspace(-5, 5, 30, dtype=np.float32)  # a clear first axis at snapshot 2
    for reference_index in (-1, 2):
        maps = embedding_maps(tables, reference_index)
        ref = tables[reference_index]
        for k, table in enumerate(tables):
            expected = svd_projection(table, ref)
            np.testing.assert_allclose(maps.coords[k], expected, rtol=1e-9, atol=1e-9)
            x = table.astype(np.float64) - table.astype(np.float64).mean(0)
            np.testing.assert_allclose(maps.explained[k], (expected**2).sum(0) / (x**2).sum(), rtol=1e-9)
    # at the reference, the shares are the ordinary PCA's explained variance ratios
    s = np.linalg.svd(tables[-1].astype(np.float64) - tables[-1].astype(np.float64).mean(0), compute_uv=False)
    np.testing.assert_allclose(embedding_maps(tables).explained[-1], (s**2)[:2] / (s**2).sum(), rtol=1e-9)


def test_the_recorder_maps_its_snapshots_on_the_latest_snapshots_axes():
    trainer = small_trainer(steps=10)
    while not trainer.done:
        trainer.step()
    shots = trainer.recorder.snapshots()
    maps = trainer.recorder.embedding_maps()
    assert maps.reference == len(shots) - 1 and maps.coords.shape == (len(shots), len(trainer.recorder.map_ids), 2)
    for k in (0, 4, len(shots) - 1):
        np.testing.assert_allclose(maps.coords[k], svd_projection(shots[k].embedding, shots[-1].embedding), atol=1e-9)


def causal(rows) -> np.ndarray:
    """A (T, T) attention map from per-row weight functions over the visible positions."""
    T = len(rows)
    att = np.zeros((T, T))
    for t, row in enumerate(rows):
        att[t, : t + 1] = row
    return att


def test_head_descriptions_of_constructed_patterns():
    T = 10
    uniform = causal([np.full(t + 1, 1 / (t + 1)) for t in range(T)])
    previous = causal([np.eye(t + 1)[max(t - 1, 0)] for t in range(T)])
    first = causal([np.eye(t + 1)[0] for t in range(T)])
    itself = causal([np.eye(t + 1)[t] for t in range(T)])
    two_back = causal([np.eye(t + 1)[max(t - 2, 0)] for t in range(T)])
    quarters = [np.isin(np.arange(t + 1), [0, t - 2, t - 1, t]) / 4 for t in range(T)]
    mixed = causal(  # a quarter each on the first token, two back, one back and itself: no position leads
        [quarters[t] if t > 2 else np.full(t + 1, 1 / (t + 1)) for t in range(T)]
    )
    assert describe_head(uniform).kind == "uniform" and describe_head(uniform).entropy == pytest.approx(1.0)
    assert describe_head(uniform).text == "spreads evenly (entropy 100% of uniform)"
    assert describe_head(previous).text == "looks one token back (1.00)"
    assert describe_head(first).text == "attends to the first token (1.00)"
    assert describe_head(itself).text == "attends to itself (1.00)"
    assert describe_head(two_back).text == "looks 2 tokens back (1.00)"  # over the rows t >= 2 that have one
    assert describe_head(mixed).kind == "mixed"
    # under half the weight on the previous token, but the most of any position: a leaning
    leaning = causal(  # 0.4 one token back, 0.3 on itself and 0.3 on the first token (rows 0 and 1 even)
        [
            np.full(t + 1, 1 / (t + 1))
            if t < 2
            else 0.4 * np.eye(t + 1)[t - 1] + 0.3 * (np.eye(t + 1)[t] + np.eye(t + 1)[0])
            for t in range(T)
        ]
    )
    share = (1 / 2 + 8 * 0.4) / 9  # row 1 gives the previous token 1/2
    assert describe_head(leaning).kind == "back" and describe_head(leaning).leans
    assert describe_head(leaning).text == f"leans one token back ({share:.2f})"
    # a softened previous-token head keeps its name with the mean weight it gives the previous token
    soft = 0.7 * previous + 0.3 * uniform
    assert describe_head(soft).kind == "back" and describe_head(soft).value == pytest.approx(
        np.mean([soft[t, t - 1] for t in range(1, T)])
    )
    # the entropy is computed, not assumed: row t of the uniform map has entropy log(t + 1)
    np.testing.assert_allclose(relative_entropy(uniform), 1.0)
    np.testing.assert_allclose(relative_entropy(itself), 0.0, atol=1e-12)
    assert describe_head(np.ones((1, 1))).kind == "single"
    # the short forms, for a line naming every head of a layer
    shorts = [describe_head(a).short for a in (uniform, previous, first, itself, two_back, mixed, leaning)]
    assert shorts == ["even", "1 back (1.00)", "first (1.00)", "self (1.00)", "2 back (1.00)", "mixed"] + [
        f"leans 1 back ({share:.2f})"
    ]


def test_summary_names_the_clearest_heads_and_counts_the_even_ones():
    T = 8
    uniform = causal([np.full(t + 1, 1 / (t + 1)) for t in range(T)])
    previous = causal([np.eye(t + 1)[max(t - 1, 0)] for t in range(T)])
    assert heads_summary(describe_heads(np.stack([[uniform, uniform], [uniform, uniform]]))) == (
        "all 4 heads still spread evenly"
    )
    text = heads_summary(describe_heads(np.stack([[uniform, previous], [uniform, uniform]])))
    assert text == "L0 H1 looks one token back (1.00); 3 of 4 even"
    short = heads_summary(describe_heads(np.stack([[uniform, previous], [uniform, uniform]])), short=True)
    assert short == "L0 H1 1 back (1.00); 3 of 4 even"


# ----- saved with the checkpoint ------------------------------------------------------------------


def assert_same_snapshots(a, b):
    assert [s.step for s in a] == [s.step for s in b]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.attention, y.attention)
        np.testing.assert_array_equal(x.embedding, y.embedding)
        assert (x.train_loss, x.val_loss, x.val_step, x.sample) == (y.train_loss, y.val_loss, y.val_step, y.sample)


def test_history_is_saved_with_the_checkpoint_and_read_back(tmp_path):
    from tinylm.core import Trainer

    trainer = small_trainer(steps=13)
    while not trainer.done:
        trainer.step()
    trainer.save(tmp_path / "run")
    assert (tmp_path / "run" / "history.safetensors").is_file() and (tmp_path / "run" / "history.json").is_file()
    back = Trainer.resume(tmp_path / "run")
    rec, again = trainer.recorder, back.recorder
    assert again.max_snapshots == rec.max_snapshots
    np.testing.assert_array_equal(again.probe_ids, rec.probe_ids)
    np.testing.assert_array_equal(again.map_ids, rec.map_ids)
    assert_same_snapshots(again.snapshots(), rec.snapshots())


def test_a_resumed_run_goes_on_appending_as_an_uninterrupted_one_would(tmp_path):
    from tinylm.core import Trainer

    whole = small_trainer(steps=20)
    while not whole.done:
        whole.step()
    part = small_trainer(steps=20)
    for _ in range(13):
        part.step()
    part.save(tmp_path / "run")  # the save adds the weights it holds: step 13
    resumed = Trainer.resume(tmp_path / "run")
    while not resumed.done:
        resumed.step()
    assert resumed.recorder.steps == [0, 1, 2, 3, 4, 6, 8, 12, 13, 16, 20]
    kept = [s for s in resumed.recorder.snapshots() if s.step != 13]
    assert_same_snapshots(kept, whole.recorder.snapshots())


def test_a_checkpoint_without_history_opens_and_starts_one(tmp_path):
    from tinylm.core import Trainer

    trainer = small_trainer(steps=20)
    for _ in range(5):
        trainer.step()
    trainer.save(tmp_path / "run")
    for name in ("history.json", "history.safetensors"):
        (tmp_path / "run" / name).unlink()
    resumed = Trainer.resume(tmp_path / "run")
    assert len(resumed.recorder) == 0
    resumed.step()
    assert resumed.recorder.steps == [5, 6]  # the weights it opened with, then the schedule


def test_a_save_without_history_leaves_no_stale_one(tmp_path):
    trainer = small_trainer(steps=20)
    trainer.step()
    trainer.save(tmp_path / "run")
    trainer.recorder = None
    trainer.save(tmp_path / "run")
    assert not (tmp_path / "run" / "history.json").exists()
    assert not (tmp_path / "run" / "history.safetensors").exists()


def test_a_damaged_history_is_one_clear_error(tmp_path):
    import json

    from tinylm.core import CheckpointError, Trainer

    trainer = small_trainer(steps=20)
    for _ in range(3):
        trainer.step()
    trainer.save(tmp_path / "run")
    path = tmp_path / "run" / "history.json"
    good = json.loads(path.read_text())
    for change, message in (
        ({"steps": good["steps"][::-1]}, "steps must increase"),
        ({"probe_ids": [10_000]}, "probe_ids must be a list of token ids"),
        ({"samples": good["samples"][:-1]}, "samples must be a list of"),
    ):
        path.write_text(json.dumps({**good, **change}))
        with pytest.raises(CheckpointError, match=f"{message}.*move history.json and history.safetensors out of"):
            Trainer.resume(tmp_path / "run")
    path.write_text(json.dumps(good))
    (tmp_path / "run" / "history.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(CheckpointError, match="history.safetensors is damaged"):
        Trainer.resume(tmp_path / "run")


def test_transformers_opens_a_checkpoint_with_history_and_sees_the_same_attention(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    trainer = small_trainer(steps=6)
    while not trainer.done:
        trainer.step()
    trainer.save(tmp_path / "run")
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "run", attn_implementation="eager")
    with torch.no_grad():
        out = hf(torch.tensor(trainer.recorder.probe_ids[None, :]), output_attentions=True)
    attention = np.stack([a[0].numpy() for a in out.attentions])  # (L, NH, P, P)
    np.testing.assert_allclose(trainer.recorder.snapshots()[-1].attention, attention, atol=1e-6)


def test_a_model_without_attention_keeps_its_history(tmp_path):
    from tinylm.core import Trainer

    trainer = small_trainer(steps=5, attention=False)
    while not trainer.done:
        trainer.step()
    shots = trainer.recorder.snapshots()
    assert [s.step for s in shots] == [0, 1, 2, 3, 4, 5] and not any(s.attention.any() for s in shots)
    trainer.save(tmp_path / "run")
    assert_same_snapshots(Trainer.resume(tmp_path / "run").recorder.snapshots(), shots)
