"""A run's metrics history that stays bounded: thinned to an even stride of steps as the run grows."""

from __future__ import annotations

HISTORY_LIMIT = 2048  # entries kept at most; a loss curve is drawn in a few hundred points at most


class MetricsHistory(list):
    """The metrics of a run's steps, oldest first, as a list; at most `limit` entries.

    When full, the training steps kept thin out to every 2nd, 4th, 8th... step (an even spread over the
    whole run, so the curve keeps its shape), evaluation steps are kept longer (they are rarer) and
    thinned the same way only once they fill half the room, and the latest step always stays. A long
    session (a run continued many times) therefore holds a fixed amount of memory, not one entry a step.
    """

    def __init__(self, entries=(), limit: int = HISTORY_LIMIT) -> None:
        super().__init__()
        self.limit = max(int(limit), 8)
        entries = list(entries)
        # a history saved thinned goes on at the stride it had (the largest power of two its training steps
        # share); evaluations come every few steps anyway, so theirs starts again at 1
        self.stride = _shared_stride([m.step for m in entries[:-1] if m.val_loss is None])
        self.val_stride = 1
        for m in entries:
            self.append(m)

    def append(self, m) -> None:
        """Add a step's metrics; thin the older ones when the history is full."""
        if self and not self._keeps(self[-1]):
            self.pop()  # the previous latest step was kept only for being the latest
        super().append(m)
        while len(self) > self.limit:
            evals = sum(1 for e in self if e.val_loss is not None)
            if evals > self.limit // 2:
                self.val_stride *= 2
            else:
                self.stride *= 2
            self[:] = [e for e in self[:-1] if self._keeps(e)] + [self[-1]]

    def extend(self, entries) -> None:
        for m in entries:
            self.append(m)

    def _keeps(self, m) -> bool:
        if m.val_loss is not None:
            return m.step % self.val_stride == 0
        return m.step % self.stride == 0


def _shared_stride(steps: list[int]) -> int:
    """The largest power of two dividing every step (1 when there are none, or one is odd)."""
    lowest = min((step & -step for step in steps if step > 0), default=1)
    return lowest if len(steps) > 1 else 1
