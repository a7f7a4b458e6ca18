"""Shared fixtures of the TUI tests: a small trained session built once, and a plain-text screen capture."""

from __future__ import annotations

import pytest

from tinylm.tui.screenshot import screen_text as text_of_screen
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
    return text_of_screen
