"""The dashboard's one way to run work off the UI thread."""

from __future__ import annotations

from textual import work


def background(group: str, *, exclusive: bool = True):
    """A thread worker of `group` whose failure stays in the worker (the screen reports it). Its description is
    the group: Textual would otherwise describe it by the repr of every argument, on the UI thread, and the repr
    of a model, a backward trace or a 50,000-label list takes longer than a frame."""
    return work(thread=True, exclusive=exclusive, group=group, exit_on_error=False, description=group)
