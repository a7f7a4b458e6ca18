"""Scrubbing the training history on the Training, Attention and Vocabulary screens: the step shown and the
numbers are the recorder's, recomputed here from its snapshots."""

from __future__ import annotations

import numpy as np
import pytest

from tinylm.core import describe_heads, heads_summary
from tinylm.tui.app import create_app
from tinylm.tui.safe_text import one_line
from tinylm.tui.session import Session
from tinylm.tui.training_worker import EMBEDDING
from tinylm.tui.widgets.heatmap import Heatmap


@pytest.fixture
def run_session(trained_session) -> Session:
    """The shared trained model with its trainer (30 steps: snapshots 0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 30);
    nothing here trains it."""
    return Session(trained_session.model, trained_session.trainer, trained_session.corpus, prompt="The fox")


async def test_scrubbing_the_training_screen_shows_each_snapshot(run_session, screen_text):
    recorder = run_session.trainer.recorder
    shots = recorder.snapshots()
    assert [s.step for s in shots] == [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 30]
    app = create_app(run_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause(0.2)
        assert "history" not in screen_text(app)
        await pilot.press("less_than_sign")  # from live: the latest snapshot
        await pilot.pause(0.2)
        for k in (10, 9, 8):
            shot, text = shots[k], screen_text(app)
            assert f"history step {shot.step} of 30 · {k + 1}/11 snapshots (≤{recorder.max_snapshots}," in text
            assert f"{recorder.nbytes / 1e6:.1f} MB" in text
            assert f"train loss{shot.train_loss:8.3f}" in text
            assert (
                f"val loss {shot.val_loss:9.3f}" in text if shot.val_loss is not None else f"val loss {'–':>9}" in text
            )
            expected = heads_summary(describe_heads(shot.attention))
            heads = next(line for line in text.splitlines() if "heads on the probe:" in line)
            assert expected.startswith(heads.split("heads on the probe: ")[1].rstrip(" …").rstrip("…"))
            prompt = run_session.model.tokenizer.decode(list(recorder.probe_ids[:8]))
            sample = one_line((prompt + shot.sample).replace("\n", " ⏎ ").strip())
            assert f"sample at step {shot.step}: {sample[:30]}" in text
            np.testing.assert_array_equal(app.screen.query_one("#wte", Heatmap).full, shot.embedding)
            await pilot.press("less_than_sign")
            await pilot.pause(0.2)
        await pilot.press("L")  # live again: the trainer's own numbers
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "history step" not in text
        np.testing.assert_array_equal(app.screen.query_one("#wte", Heatmap).full, run_session.model.params[EMBEDDING])
        await pilot.press("greater_than_sign")  # from live, > starts at the first snapshot
        await pilot.pause(0.2)
        assert "history step 0 of 30 · 1/11 snapshots" in screen_text(app)
        assert f"train loss{'–':>8}" in screen_text(app)  # before the first step there is no loss


async def test_past_the_latest_snapshot_is_live_and_the_step_is_shared_by_the_screens(run_session, screen_text):
    app = create_app(run_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2", "less_than_sign")
        await pilot.pause(0.1)
        assert run_session.history_step == 30
        await pilot.press("greater_than_sign")
        await pilot.pause(0.1)
        assert run_session.history_step is None and "history step" not in screen_text(app)
        await pilot.press("less_than_sign", "less_than_sign")
        assert run_session.history_step == 24


async def test_the_keys_are_in_help_and_the_palette(run_session, screen_text):
    app = create_app(run_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        commands = {c.title for c in app.get_system_commands(app.screen)}
        assert {"History: earlier snapshot", "History: later snapshot", "History: back to live"} <= commands

    from tinylm.tui.screens.help import screen_bindings
    from tinylm.tui.screens.registry import SCREENS

    described = {e.mode: {b.description for b in screen_bindings(e.screen_class())} for e in SCREENS}
    for mode in ("training",):
        assert {"History: earlier snapshot", "History: later snapshot", "History: back to live"} <= described[mode]
