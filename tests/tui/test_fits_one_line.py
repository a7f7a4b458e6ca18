"""Lines that must stay one line at 80 columns: the chart's legend while scrubbing, the Backward stage title,
and each key in the help once."""

from __future__ import annotations

import pytest

from tinylm.tui.app import create_app
from tinylm.tui.backstages import BackStage
from tinylm.tui.screens.help import help_bindings
from tinylm.tui.screens.registry import SCREENS
from tinylm.tui.widgets.chart import BrailleChart, Series


def test_the_legend_drops_digits_then_the_title_before_it_cuts_a_name():
    chart = BrailleChart(title="loss")
    train, val, snap = [2.123456, 1.5], [2.5, 1.734567], [1.6, 1.2, 1.456789]
    chart.series = [
        Series("train", [0, 10], train, "cyan"),
        Series("val", [0, 10], val, "yellow"),
        Series("step 40", [40] * 3, snap, "magenta"),
    ]
    wide = chart.legend(80).plain
    assert wide == "loss  ━ train 1.500  ━ val 1.735  ━ step 40 1.457"
    assert chart.legend(43).plain == "loss ━ train 1.50 ━ val 1.73 ━ step 40 1.46"
    narrow = chart.legend(38).plain
    assert len(narrow) <= 38 and narrow == "━ train 1.50 ━ val 1.73 ━ step 40 1.46"
    chart.series[-1] = Series("step 600", [600] * 3, snap, "magenta", short="@600")  # a longer step
    assert chart.legend(38).plain == "━ train 1.50 ━ val 1.73 ━ @600 1.46"  # its short name
    assert chart.legend(20).plain == "━ train 1.50 ━ val 1.73 ━ @600 1.46"  # none fits: the shortest, cut by render


def test_every_key_is_listed_once_per_screen_in_the_help():
    for entry in SCREENS:
        keys = [key for b in help_bindings(entry.screen_class()) for key in b.key.split(",")]
        assert len(keys) == len(set(keys)), (entry.label, sorted(k for k in keys if keys.count(k) > 1))


async def test_the_backward_title_stays_on_one_line_at_80x24(session, screen_text):
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("7")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        screen.step = 123456  # a long training step count, as after a long run
        screen.index = screen.stages.index(BackStage("scores", 1))
        screen.show_stage()
        await pilot.pause()
        title = screen.query_one("#stage-title")
        assert title.size.height == 1
        shown = str(title.render())
        assert shown.startswith(screen.stage.title) and "layer 1 (0–1)" in shown and "head 0 (0–1)" in shown
        assert len(shown) <= screen.query_one("#main").content_size.width
        screen.index = screen.stages.index(BackStage("res_2", 1))  # a shorter title keeps the loss
        screen.show_stage()
        await pilot.pause()
        assert f"loss {screen.bt.loss:.4f}" in str(title.render()) and title.size.height == 1
        await pilot.resize_terminal(200, 60)
        await pilot.pause()
        screen.show_stage()
        await pilot.pause()
        wide = str(title.render())
        assert "(0–1)" in wide and f"loss {screen.bt.loss:.4f} at step 123456" in wide and "/" in wide


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
async def test_the_training_legend_is_whole_while_scrubbing(trained_session, screen_text, size):
    """Scrubbed to a snapshot, the chart's legend names train, val and the snapshot's step with its loss."""
    from tinylm.tui.session import Session

    run = Session(trained_session.model, trained_session.trainer, trained_session.corpus, prompt="The fox")
    shot = run.trainer.recorder.snapshots()[-1]
    app = create_app(run)
    async with app.run_test(size=size) as pilot:
        await pilot.press("2")
        await pilot.pause(0.2)
        await pilot.press("less_than_sign")
        await pilot.pause(0.2)
        legend = next(line for line in screen_text(app).splitlines() if "━ train" in line)
        assert "…" not in legend
        names = (f"step {shot.step}", f"@{shot.step}")
        assert any(f"━ {n} {shot.train_loss:.{d}f}" in legend for n in names for d in (3, 2)), legend
