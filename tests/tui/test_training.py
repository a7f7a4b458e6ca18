"""Training in the background: the worker's slot, pause/resume/stop, divergence, the screen's numbers, speed."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from tinylm.core import ModelConfig, TrainConfig, TrainingDiverged, load_corpus, make_trainer
from tinylm.tui.app import create_app
from tinylm.tui.session import Session
from tinylm.tui.training_worker import EMBEDDING, TrainingRun
from tinylm.tui.widgets.heatmap import Heatmap


def tiny_trainer(steps: int = 20, seed: int = 0):
    corpus = load_corpus("fables")
    return make_trainer(
        corpus,
        "char",
        model_config=ModelConfig(n_layer=1, n_head=2, n_embd=16, block_size=16),
        train_config=TrainConfig(
            batch_size=4, max_steps=steps, warmup_steps=0, eval_interval=5, eval_batches=2, seed=seed
        ),
    )


def wait_for(predicate, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


class TestTrainingRun:
    def test_runs_to_the_end_and_the_slot_matches_the_history(self):
        trainer = tiny_trainer(steps=20)
        run = TrainingRun(trainer, sample_every=10, sample_tokens=10)
        run.start()
        wait_for(lambda: not run.alive)
        state = run.state()
        assert state.status == "finished" and state.step == 20 and state.fraction == 1.0
        assert state.train_losses == [m.train_loss for m in trainer.history]
        assert state.val_steps == [m.step for m in trainer.history if m.val_loss is not None]
        assert state.metrics is trainer.history[-1]
        assert state.sample_step == 20 and state.sample.startswith("\n")
        np.testing.assert_array_equal(state.matrices[EMBEDDING], trainer.model.params[EMBEDDING])

    def test_the_slot_stays_bounded_over_a_long_run(self):
        from tinylm.core.metrics_history import MetricsHistory
        from tinylm.tui.training_worker import CURVE_SLACK

        trainer = tiny_trainer(steps=1500)
        trainer.history = MetricsHistory(limit=32)
        run = TrainingRun(trainer, sample_every=10_000, sample_tokens=1)
        longest = 0
        run.start()
        while run.alive:
            longest = max(longest, len(run.state().train_steps))
            time.sleep(0.005)
        state = run.state()
        assert state.step == 1500 and state.train_steps[-1] == 1500
        longest = max(longest, len(state.train_steps))
        assert len(trainer.history) <= 32 and longest <= 32 + CURVE_SLACK + 1
        shown = dict(zip(state.train_steps, state.train_losses))
        kept = {m.step: m.train_loss for m in trainer.history}
        assert all(shown[s] == loss for s, loss in kept.items())  # the curve holds the history's points
        assert state.val_steps == sorted(state.val_steps) and state.val_steps[-1] == 1500

    def test_pause_holds_the_weights_and_resume_continues(self):
        trainer = tiny_trainer(steps=100_000)
        run = TrainingRun(trainer)
        run.start()
        wait_for(lambda: trainer.step_count >= 2)
        run.pause()
        time.sleep(0.2)  # the step in flight finishes
        paused_at = trainer.step_count
        time.sleep(0.3)
        assert trainer.step_count == paused_at and run.state().status == "paused"
        run.resume()
        wait_for(lambda: trainer.step_count > paused_at + 2)
        run.stop()
        assert not run.alive and run.state().status == "stopped"
        assert run.state().message.startswith("stopped at step")

    def test_stop_while_paused_ends_the_thread(self):
        run = TrainingRun(tiny_trainer(steps=100_000))
        run.start()
        run.pause()
        run.stop(wait=5)
        assert not run.alive

    def test_divergence_stops_with_a_message_and_keeps_the_last_good_weights(self, monkeypatch):
        trainer = tiny_trainer(steps=50)
        real_step, calls = trainer.step, []

        def step():
            calls.append(1)
            if len(calls) == 4:
                raise TrainingDiverged("loss became nan at step 4")
            return real_step()

        monkeypatch.setattr(trainer, "step", step)
        run = TrainingRun(trainer)
        run.start()
        wait_for(lambda: not run.alive)
        state = run.state()
        assert state.status == "diverged"
        assert "nan" in state.message and "step 3" in state.message
        assert state.step == 3
        np.testing.assert_array_equal(state.matrices[EMBEDDING], trainer.model.params[EMBEDDING])

    def test_watch_copies_the_chosen_matrix(self):
        trainer = tiny_trainer(steps=3)
        run = TrainingRun(trainer)
        name = "transformer.h.0.mlp.c_fc.weight"
        run.watch(name)
        np.testing.assert_array_equal(run.state().matrices[name], trainer.model.params[name])


def block_max_abs(values: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The maps' rule cell by cell: the value of largest |x| in each rows x cols block."""
    out = np.zeros((-(-values.shape[0] // rows), -(-values.shape[1] // cols)))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            block = values[i * rows : (i + 1) * rows, j * cols : (j + 1) * cols]
            out[i, j] = block.flat[int(np.argmax(np.abs(block)))]
    return out


class TestTrainingScreen:
    async def test_finished_run_shows_its_numbers(self, screen_text):
        trainer = tiny_trainer(steps=20)
        session = Session(trainer.model, trainer, load_corpus("fables"))
        app = create_app(session)
        async with app.run_test(size=(80, 24)) as pilot:
            run = app.start_training()
            await asyncio.to_thread(wait_for, lambda: not run.alive)
            await pilot.press("2")
            await pilot.pause(0.3)
            text = screen_text(app)
            last = trainer.history[-1]
            last_val = [m for m in trainer.history if m.val_loss is not None][-1]
            assert "finished" in text and "100.0%" in text and "step 20/20" in text
            assert f"{last.train_loss:.3f}" in text
            assert f"{last_val.val_loss:.3f}" in text
            assert f"{100 * last_val.accuracy:.1f}%" in text
            assert f"{last.grad_norm:.3f}" in text and f"{last.lr:.2e}" in text
            heatmap = app.screen.query_one("#wte", Heatmap)
            wte = trainer.model.params[EMBEDDING]
            np.testing.assert_allclose(heatmap.full, wte)  # the whole table, in blocks of the stated size
            red = heatmap.reduced
            assert f"max|x| of {red.rows}x{red.cols}" in text or red.identity
            np.testing.assert_allclose(heatmap.values, block_max_abs(wte, red.rows, red.cols))
            assert "sample at step 20" in text

    @pytest.mark.slow  # trains in the background
    @pytest.mark.parametrize("size", [(80, 24), (200, 60)])
    async def test_pause_resume_stop_keys(self, screen_text, size):
        trainer = tiny_trainer(steps=100_000)
        app = create_app(Session(trainer.model, trainer, load_corpus("fables")))
        async with app.run_test(size=size) as pilot:
            await pilot.press("2", "t")
            run = app.training
            assert run is not None and run.alive
            await pilot.press("space")
            assert run.state().status == "paused"
            await pilot.pause(0.3)
            assert "paused" in screen_text(app)
            await pilot.press("p")
            assert run.state().status == "running"
            await pilot.press("m")  # another weight matrix
            await pilot.press("s")
            assert not run.alive and run.state().status == "stopped"
            await pilot.pause(0.3)
            assert "stopped" in screen_text(app)

    async def test_next_matrix_key_changes_the_heatmap(self, session):
        app = create_app(Session.demo(seed=0, steps=2))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("2")
            screen = app.screen
            first = screen.current_matrix()
            await pilot.press("m")
            await pilot.pause()
            second = screen.current_matrix()
            assert second != first
            grid = screen.query_one("#weights", Heatmap)
            np.testing.assert_allclose(grid.full, app.session.model.params[second])
            weights, red = app.session.model.params[second], grid.reduced
            np.testing.assert_allclose(grid.values, block_max_abs(weights, red.rows, red.cols))

    async def test_diverged_run_shows_the_message(self, monkeypatch, screen_text):
        trainer = tiny_trainer(steps=50)
        monkeypatch.setattr(trainer, "step", lambda: (_ for _ in ()).throw(TrainingDiverged("loss became inf")))
        app = create_app(Session(trainer.model, trainer))
        async with app.run_test(size=(80, 24)) as pilot:
            run = app.start_training()
            await asyncio.to_thread(wait_for, lambda: not run.alive)
            await pilot.press("2")
            await pilot.pause(0.3)
            assert "diverged" in screen_text(app) and "loss became inf" in screen_text(app)


class TestBrailleChart:
    def test_fits_the_box_and_labels_the_range(self):
        from tinylm.tui.widgets.chart import Series, render_braille

        xs = list(range(1, 501))
        ys = [4.0 / (1 + x / 50) + 1 for x in xs]
        lines = render_braille([Series("train", xs, ys), Series("val", xs[::50], ys[::50], "yellow")], 60, 12)
        assert len(lines) == 12 and all(line.cell_len <= 60 for line in lines)
        assert f"{max(ys):.3f}" in lines[0].plain and f"{min(ys):.3f}" in lines[-2].plain
        assert "500" in lines[-1].plain
        assert any("\u2800" < ch <= "\u28ff" for ch in lines[0].plain)  # braille dots

    def test_degenerate_inputs(self):
        from tinylm.tui.widgets.chart import Series, render_braille

        assert "no data" in render_braille([Series("a", [], [])], 30, 5)[-1].plain
        for series in (
            [Series("a", [1], [2.0])],
            [Series("a", [1, 2], [3.0, 3.0])],
            [Series("a", [1, 2, 3], [1.0, float("nan"), 2.0])],
        ):
            for w, h in ((1, 1), (8, 2), (40, 10)):
                render_braille(series, w, h)  # never raises
