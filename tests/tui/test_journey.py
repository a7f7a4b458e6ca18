"""The main journey, by keys only: configure, train a tiny model, inspect, step through layers, attention,
vocabulary, generate, change the temperature; at 80x24 and at 200x60."""

from __future__ import annotations

import numpy as np
import pytest
from textual.widgets import Input

from tinylm.core import Sampling
from tinylm.tui.app import create_app
from tinylm.tui.screens.quit import QuitScreen
from tinylm.tui.session import Session
from tinylm.tui.widgets.probbars import ProbBars

TINY = dict(layers="2", heads="2", embd="16", context="16", batch="4", steps="20", warmup="0")


@pytest.mark.parametrize("size", [(80, 24), pytest.param((200, 60), marks=pytest.mark.slow)])
async def test_journey(size, screen_text):
    app = create_app(Session())
    async with app.run_test(size=size) as pilot:
        # 1 Config: a tiny model, then create & train
        await pilot.pause()
        assert "New model (ctrl+t)" in screen_text(app)
        for field, value in TINY.items():
            app.screen.query_one(f"#{field}", Input).value = value
        await pilot.pause(0.4)
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("ctrl+t")
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)
        assert app.current_mode == "training"
        app.training._thread.join(60)  # a few seconds; kept out of Pilot's idle waits
        await pilot.pause(0.5)
        session = app.session
        assert session.trainer.step_count == 20
        text = screen_text(app)
        assert "finished" in text and "step 20/20" in text and "train loss" in text

        # 3 Inspect: step through stages, into the second layer and another head
        await pilot.press("3")
        await pilot.pause()
        assert session.model is not None and "No model yet" not in screen_text(app)
        await pilot.press("n", "n", "n", "n")
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert session.layer == 1
        await pilot.press("full_stop")
        await pilot.pause()
        assert session.head == 1

        # 4 Attention follows the shared layer and head; 6 Vocabulary shows the tokens
        await pilot.press("4")
        await pilot.pause()
        assert session.layer == 1 and "No model yet" not in screen_text(app)
        await pilot.press("6")
        await pilot.pause()
        assert "No model yet" not in screen_text(app)

        # 5 Generate: a token, then a hotter temperature; the bars are the model's numbers
        await pilot.press("5")
        await pilot.pause()
        await pilot.press("n")
        screen = app.screen
        assert len(screen.generated) == 1
        await pilot.press("plus")
        await pilot.pause()
        raw = session.model.next_token_probs(screen.text)
        with np.errstate(divide="ignore"):
            want = Sampling(temperature=1.2).distribution(np.log(raw))
        items = screen.query_one("#bars", ProbBars).items
        np.testing.assert_allclose([it.prob for it in items], np.sort(want)[::-1][: len(items)], rtol=1e-6)
        assert "temp 1.2" in screen_text(app)

        # quitting with trained weights that no checkpoint holds asks first; n quits without saving
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("n")
        await pilot.pause()
    assert app.return_code == 0
