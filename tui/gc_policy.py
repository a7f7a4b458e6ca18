"""The garbage collector while the dashboard runs: long-lived objects kept out of its full passes.

A loaded GPT-2 brings about 90,000 long-lived objects (its tokenizer's tables, the engine's modules),
and every full collection walked them all on the UI thread: half a second on a busy 2-core machine,
paid at random moments, such as the first visit of a screen. Freezing them (gc.freeze) after a model
is installed takes them out of every later pass; young collections are also made rarer. Both are
undone when the app stops, so a process that runs several apps (the tests) collects as before.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # allocations between young collections while the UI lives (Python's default: 700)

_running = 0  # apps started and not yet stopped


def start() -> tuple[int, int, int]:
    """The UI is up: freeze what is alive now and raise the young threshold; returns the old thresholds."""
    global _running
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], YOUNG_THRESHOLD), *old[1:])
    gc.freeze()
    _running += 1
    return old


def stop(old: tuple[int, int, int]) -> None:
    """The UI is gone: thresholds as they were, frozen objects collectable again."""
    global _running
    _running = max(_running - 1, 0)
    gc.set_threshold(*old)
    if not _running:
        gc.unfreeze()


def settle() -> None:
    """A model was just installed: while the UI runs, keep its objects out of later full collections."""
    if _running:
        gc.freeze()
