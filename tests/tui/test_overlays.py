"""Training: earlier runs' loss curves overlaid on the chart, picked from the saved checkpoints, each in its
colour with a legend naming how it differs from the current run."""

from __future__ import annotations

from textual.widgets import Input, OptionList

from tinylm.core import ModelConfig, TrainConfig, load_corpus, make_trainer, read_saved_run
from tinylm.tui.app import create_app
from tinylm.tui.screens.overlays import OverlayPicker, overlay_colour
from tinylm.tui.screens.training import TrainingScreen
from tinylm.tui.session import Session
from tinylm.tui.widgets.chart import BrailleChart


def save_run(path, steps=8, **model):
    tr = make_trainer(
        load_corpus("fables"),
        "char",
        None,
        ModelConfig(**{"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16, **model}),
        TrainConfig(batch_size=4, max_steps=steps, warmup_steps=0, eval_interval=4, eval_batches=1),
    )
    for _ in range(steps):
        tr.step()
    tr.save(path)
    return tr


async def _settle(app, pilot):
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_a_picked_run_is_drawn_from_its_saved_history_with_a_legend(tmp_path, monkeypatch, screen_text):
    monkeypatch.chdir(tmp_path)  # the app looks for runs beside its checkpoint directory and in runs/
    saved = save_run(tmp_path / "runs" / "deeper", steps=12, n_layer=3, attention=False)
    save_run(tmp_path / "checkpoints" / "other", steps=6)
    session = Session.demo(seed=0, steps=3)  # 2 layers with attention, lr 3e-3: the current run
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await _settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        await pilot.press("o")
        await _settle(app, pilot)
        picker = app.screen
        assert isinstance(picker, OverlayPicker)
        assert sorted(p.name for p in picker.paths) == ["deeper", "other"]
        picker.query_one(OptionList).highlighted = [p.name for p in picker.paths].index("deeper")
        await pilot.press("enter")
        await _settle(app, pilot)
        await pilot.press("escape")
        await _settle(app, pilot)
        assert app.screen is screen and [r.name for r in screen.overlays] == ["deeper"]
        chart = screen.query_one("#loss", BrailleChart)
        drawn = next(s for s in chart.series if s.name == "deeper")
        # the overlay's points are the saved history, step by step
        assert list(drawn.xs) == [m.step for m in saved.history]
        assert list(drawn.ys) == [m.train_loss for m in saved.history]
        assert drawn.style == overlay_colour(0) and chart.title == "loss by step"
        assert chart.x_range[1] >= 12
        text = " ".join(screen_text(app).split())
        legend = str(screen.query_one("#overlay-legend").content)
        val = read_saved_run(tmp_path / "runs" / "deeper").val_losses[-1]
        # at 80 columns the differences are cut, with an ellipsis, and the validation loss stays whole
        assert legend.endswith(f"… · val {val:.3f}") and f"… · val {val:.3f}" in text
        assert "━ deeper: 3 layers, no attention, lr 0.001"[: legend.index("…")] == legend[: legend.index("…")]
        assert "loss by step" in text

        # a typed directory is added too, and enter on a shown run takes it off
        await pilot.press("o")
        await _settle(app, pilot)
        app.screen.query_one("#overlay-path", Input).value = str(tmp_path / "checkpoints" / "other")
        app.screen.set_focus(app.screen.query_one("#overlay-path", Input))
        await pilot.press("enter")
        await _settle(app, pilot)
        assert [r.name for r in screen.overlays] == ["deeper", "other"]
        picker = app.screen
        picker.set_focus(picker.query_one(OptionList))
        picker.query_one(OptionList).highlighted = [p.name for p in picker.paths].index("deeper")
        await pilot.press("enter")
        await pilot.press("escape")
        await _settle(app, pilot)
        assert [r.name for r in screen.overlays] == ["other"]
        assert not any(s.name == "deeper" for s in chart.series)
        assert read_saved_run(tmp_path / "checkpoints" / "other").train_losses == list(
            next(s for s in chart.series if s.name == "other").ys
        )


async def test_a_directory_that_is_not_a_run_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = create_app(Session.demo(seed=0, steps=2))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await _settle(app, pilot)
        screen = app.screen
        await pilot.press("o")
        await _settle(app, pilot)
        assert "no saved runs" in str(app.screen.query_one("#overlay-help").content)
        app.screen.query_one("#overlay-path", Input).value = str(tmp_path / "nowhere")
        app.screen.set_focus(app.screen.query_one("#overlay-path", Input))
        await pilot.press("enter")
        await _settle(app, pilot)
        assert not screen.overlays
        assert any("cannot overlay" in n.message and "nowhere" in n.message for n in app._notifications)


async def test_a_directory_is_typed_with_the_keyboard_alone(tmp_path, monkeypatch, screen_text):
    """tab goes from the list to the directory field, what is typed shows at 80x24, enter adds the run."""
    monkeypatch.chdir(tmp_path)
    save_run(tmp_path / "elsewhere" / "typed", steps=4)
    app = create_app(Session.demo(seed=0, steps=2))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await _settle(app, pilot)
        screen = app.screen
        await pilot.press("o")
        await _settle(app, pilot)
        await pilot.press("tab", *"elsewhere/typed")
        await pilot.pause()
        assert app.screen.query_one("#overlay-path", Input).value == "elsewhere/typed"
        assert "elsewhere/typed" in screen_text(app)
        await pilot.press("enter")
        await _settle(app, pilot)
        assert [r.name for r in screen.overlays] == ["typed"]
