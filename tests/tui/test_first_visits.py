"""What keeps a screen's first visit from blocking the UI: every CSS source read at start, and the
garbage collector's long-lived objects frozen while the app runs (and thawed after)."""

from __future__ import annotations

import gc

from tinylm.tui import gc_policy
from tinylm.tui.app import create_app


async def test_no_screen_adds_css_on_its_first_visit(session, monkeypatch):
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        sources = dict(app.stylesheet.source)
        reparses = []
        reparse = app.stylesheet.reparse
        monkeypatch.setattr(app.stylesheet, "reparse", lambda: reparses.append(1) or reparse())
        for entry in app.screen_entries:
            app.switch_mode(entry.mode)
            await pilot.pause()
        await pilot.press("question_mark")  # and a modal
        await pilot.pause()
        added = set(app.stylesheet.source) - set(sources)
        assert not added, added  # each would have made Textual parse everything again and restyle every widget
        assert all(app.stylesheet.source[k].content == sources[k].content for k in sources)
        assert not reparses  # nor did a new screen make Textual reparse the whole stylesheet


async def test_collector_is_quiet_while_the_app_runs_and_as_before_after(session):
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    app = create_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert gc.get_threshold()[0] >= gc_policy.YOUNG_THRESHOLD
        assert gc.get_freeze_count() > frozen  # the model and the app's modules: out of full collections
        session.set_model(session.model)  # a model installed while the UI runs is frozen too
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen  # thawed: a later app, or the tests, collect as before
