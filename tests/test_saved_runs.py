"""Saved runs: the loss history read back from a checkpoint is the trainer's, and the differences between
two runs' settings are named."""

import json
import os

import pytest

from tinylm.core import (
    CheckpointError,
    ModelConfig,
    TrainConfig,
    describe_run,
    find_saved_runs,
    load_corpus,
    make_trainer,
    read_saved_run,
    run_differences,
)


def trained(path, steps=12, tokenizer="char", **model):
    tr = make_trainer(
        load_corpus("fables"),
        tokenizer,
        None,
        ModelConfig(**{"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16, **model}),
        TrainConfig(batch_size=4, max_steps=steps, warmup_steps=0, eval_interval=4, eval_batches=1),
    )
    for _ in range(steps):
        tr.step()
    tr.save(path)
    return tr


def test_the_history_read_back_is_the_trainers(tmp_path):
    tr = trained(tmp_path / "a")
    run = read_saved_run(tmp_path / "a")
    assert run.train_steps == [m.step for m in tr.history]
    assert run.train_losses == [m.train_loss for m in tr.history]
    assert run.val_steps == [m.step for m in tr.history if m.val_loss is not None]
    assert run.val_losses == [m.val_loss for m in tr.history if m.val_loss is not None]
    assert run.step == 12 and run.tokenizer == "char" and run.corpus == "fables"
    assert run.tokens_per_step == 4 * 16
    assert describe_run(run) == f"1L x 2H x 16, char, lr 0.001, 12 steps, val {run.val_losses[-1]:.3f}"


def test_differences_name_layers_tokenizer_attention_and_learning_rate(tmp_path):
    trained(tmp_path / "b", steps=4, n_layer=2, attention=False)
    run = read_saved_run(tmp_path / "b")
    now = ModelConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=run.model.vocab_size)
    assert run_differences(run, now, TrainConfig(learning_rate=3e-3, batch_size=4), "bpe") == [
        "2 layers",
        "no attention",
        "char tokens (loss per token: not comparable)",
        "lr 0.001",
    ]
    assert run_differences(run, run.model, run.train, "char") == []


def test_find_lists_runs_newest_first_and_skips_the_current_one(tmp_path):
    trained(tmp_path / "runs" / "old", steps=2)
    trained(tmp_path / "runs" / "new", steps=2)
    os.utime(tmp_path / "runs" / "old" / "trainer_state.json", (1, 1))
    (tmp_path / "runs" / "notes").mkdir()  # no checkpoint: not listed
    found = find_saved_runs([tmp_path / "runs", tmp_path / "missing"])
    assert [p.name for p in found] == ["new", "old"]
    assert find_saved_runs([tmp_path / "runs"], skip=[tmp_path / "runs" / "new"]) == [tmp_path / "runs" / "old"]


def test_a_directory_without_a_history_is_one_line(tmp_path):
    with pytest.raises(CheckpointError, match="not a directory"):
        read_saved_run(tmp_path / "nothing")
    tr = trained(tmp_path / "c", steps=2)
    (tmp_path / "c" / "trainer_state.json").unlink()
    with pytest.raises(CheckpointError, match="no trainer_state.json"):
        read_saved_run(tmp_path / "c")
    (tmp_path / "c" / "trainer_state.json").write_text(json.dumps({"history": [{"step": "x"}]}))
    with pytest.raises(CheckpointError, match="records no training steps"):
        read_saved_run(tmp_path / "c")
    assert tr.step_count == 2
