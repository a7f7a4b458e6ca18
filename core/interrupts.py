"""Holding Ctrl-C back while state that must change together is updated.

Python runs a SIGINT handler between any two bytecodes, so a KeyboardInterrupt can land after the
optimizer has changed the weights but before the step count says so: a state that is no step at all.
Inside `HeldInterrupts`, a SIGINT is only noted; it is handed to the handler that was in place when the
block ends, so the interrupt arrives at a step boundary. Off the main thread signals never arrive, and
the block does nothing.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


class HeldInterrupts:
    """`with HeldInterrupts() as held:` SIGINT waits until the block ends; `with held.released():`
    lets it through again for a part that may be cut short."""

    def __init__(self):
        self.active = False
        self.pending = False
        self.previous = None

    def _note(self, signum, frame) -> None:
        self.pending = True

    def __enter__(self) -> HeldInterrupts:
        if threading.current_thread() is threading.main_thread():
            try:
                self.previous = signal.signal(signal.SIGINT, self._note)
            except ValueError:  # not the main interpreter
                return self
            if self.previous is None:  # a handler installed outside Python: the default is the nearest
                self.previous = signal.SIG_DFL
            self.active = True
        return self

    def __exit__(self, *exc) -> bool:
        if self.active:
            self.active = False
            signal.signal(signal.SIGINT, self.previous)
            self._deliver()
        return False

    def _deliver(self) -> None:
        """Hand a noted SIGINT to the handler it was meant for."""
        if not self.pending:
            return
        self.pending = False
        if callable(self.previous):
            self.previous(signal.SIGINT, None)
        elif self.previous == signal.SIG_DFL:
            signal.raise_signal(signal.SIGINT)

    @contextmanager
    def released(self):
        """Let SIGINT through (a noted one first) until this inner block ends, then hold it again."""
        if not self.active:
            yield
            return
        signal.signal(signal.SIGINT, self.previous)
        try:
            self._deliver()
            yield
        finally:
            signal.signal(signal.SIGINT, self._note)
