"""A reentrant lock handed to waiters in arrival order, so the UI is not starved by a training loop."""

from __future__ import annotations

import collections
import threading


class FairRLock:
    """Like threading.RLock, but first come, first served.

    A trainer that releases the model's lock and takes it again at once wins a plain RLock nearly every
    time, so a UI thread waiting to read the weights could wait for many steps; here it waits one at most.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()  # guards the fields below; held only for bookkeeping
        self._owner: int | None = None
        self._count = 0
        self._waiters: collections.deque[tuple[int, threading.Lock]] = collections.deque()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = threading.get_ident()
        with self._mutex:
            if self._owner == me:
                self._count += 1
                return True
            if self._owner is None and not self._waiters:
                self._owner, self._count = me, 1
                return True
            if not blocking:
                return False
            gate = threading.Lock()
            gate.acquire()
            entry = (me, gate)
            self._waiters.append(entry)
        if gate.acquire(timeout=timeout if timeout >= 0 else -1):
            return True  # release() made us the owner before opening the gate
        with self._mutex:
            if entry in self._waiters:  # timed out while still queued
                self._waiters.remove(entry)
                return False
        return True  # ownership arrived just as the wait timed out

    def release(self) -> None:
        with self._mutex:
            if self._owner != threading.get_ident():
                raise RuntimeError("cannot release un-acquired lock")
            self._count -= 1
            if self._count:
                return
            if self._waiters:
                owner, gate = self._waiters.popleft()
                self._owner, self._count = owner, 1  # hand over directly: nobody can jump the queue
                gate.release()
            else:
                self._owner = None

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def locked(self) -> bool:
        return self._owner is not None


def make_fair(model) -> None:
    """Give the model a FairRLock (call while no other thread uses the model)."""
    if not isinstance(model.lock, FairRLock):
        model.use_lock(FairRLock())
