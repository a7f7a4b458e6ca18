"""Shared fixtures of the TUI tests: a small trained session built once, and a plain-text screen capture."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from tinylm.tui.session import Session


@pytest.fixture(autouse=True)
def _truecolor(monkeypatch):
    """Snapshots and colour checks must not depend on the terminal the tests run in."""
    monkeypatch.setattr("textual.constants.COLOR_SYSTEM", "truecolor")


@pytest.fixture(scope="session")
def trained_session() -> Session:
    """A tiny seeded char model (2 layers, 2 heads, C=16, T=16) trained 30 steps; built once, never mutated."""
    return Session.demo(seed=0, steps=30)


@pytest.fixture
def session(trained_session) -> Session:
    """A fresh Session around the shared trained model (no trainer, so nothing can train it by accident)."""
    return Session(trained_session.model, None, trained_session.corpus, prompt="The fox")


@pytest.fixture
def screen_text():
    """Returns a function giving the app's current screen as plain text (what a terminal would show)."""

    def capture(app) -> str:
        width, height = app.size
        console = Console(
            width=width,
            height=height,
            file=io.StringIO(),
            force_terminal=True,
            color_system=None,
            record=True,
            legacy_windows=False,
            safe_box=False,
        )
        console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
        return console.export_text()

    return capture
