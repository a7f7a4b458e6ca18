"""Config's device choice: offered only when the CUDA kernels can run (a GPU, or numba's simulator),
otherwise one line saying why not; and a run trained on a device keeps the screens' CPU copy of the
weights up to date."""

from __future__ import annotations

import numpy as np
import pytest
from textual.widgets import Select, Static

import tinylm.core
from tinylm.core import GPT, Corpus, ModelConfig, TrainConfig, make_trainer
from tinylm.tui.app import create_app
from tinylm.tui.training_worker import TrainingRun


async def _device_row(session, monkeypatch, problem):
    monkeypatch.setattr(tinylm.core, "cuda_missing", lambda: problem)
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        await app.workers.wait_for_complete()
        await pilot.pause()
        select = app.screen.query_one("#device", Select)
        reason = app.screen.query_one("#device-reason", Static)
        return select.display, [value for _, value in select._options], reason.display, str(reason.content)


async def test_without_a_gpu_the_form_says_why_in_one_line(session, monkeypatch):
    problem = "no NVIDIA driver found (CUDA driver library cannot be found); the GPU path needs ..."
    shown, options, reason_shown, reason = await _device_row(session, monkeypatch, problem)
    assert not shown and reason_shown
    assert reason == "cpu: no NVIDIA driver found"


async def test_with_a_gpu_the_form_offers_it(session, monkeypatch):
    shown, options, reason_shown, _ = await _device_row(session, monkeypatch, None)
    assert shown and not reason_shown
    assert options == ["cpu", "cuda"]


def test_a_run_refreshes_the_host_copy_the_screens_read():
    """The run copies the trained weights into the host model at its snapshots and when it ends (here
    both are CPU models: the copying is the same whatever the device)."""
    trainer = make_trainer(
        Corpus.from_text("a bad cab, a dab. " * 12),
        "char",
        model_config=ModelConfig(n_layer=1, n_head=2, n_embd=8, block_size=8),
        train_config=TrainConfig(batch_size=2, max_steps=3, eval_interval=3, eval_batches=1),
    )
    host = GPT(trainer.model.config, trainer.model.tokenizer, init=False)  # the screens' copy, zero so far
    run = TrainingRun(trainer, sample_tokens=2, snapshot_interval=1e9, host_model=host)
    run.start()
    run._thread.join(60)
    assert run.state().status == "finished"
    np.testing.assert_array_equal(host.flat, trainer.model.flat)
    np.testing.assert_array_equal(run.state().matrices["transformer.wte.weight"], host.params["transformer.wte.weight"])


@pytest.mark.parametrize("with_trainer", [False, True])
def test_explained_adamw_step_on_the_host_copy_reaches_the_trained_model(with_trainer):
    """The Backward screen's AdamW step on the screens' copy is taken by the trained model too."""
    from tinylm.core import apply_adamw_step, explain_adamw_step

    trainer = make_trainer(
        Corpus.from_text("a bad cab, a dab. " * 12),
        "char",
        model_config=ModelConfig(n_layer=1, n_head=2, n_embd=8, block_size=8),
        train_config=TrainConfig(batch_size=2, max_steps=3),
    )
    trainer.recorder = None
    trainer.step()
    host = GPT(trainer.model.config, trainer.model.tokenizer, init=False)
    host.flat[...] = trainer.model.flat
    ids = np.array([1, 2, 3, 4])
    update = explain_adamw_step(
        host, ids, ids[::-1].copy(), "transformer.wte.weight", (1, 2), trainer if with_trainer else None
    )
    apply_adamw_step(host, update)
    if with_trainer:
        np.testing.assert_array_equal(trainer.model.flat, host.flat)
        assert trainer.step_count == 2
    assert host.params["transformer.wte.weight"][1, 2] == pytest.approx(update.weight_after)
