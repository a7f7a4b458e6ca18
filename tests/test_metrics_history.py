"""The metrics history stays bounded over any number of steps and keeps an even spread of the run."""

from __future__ import annotations

import json

from tinylm.core.metrics_history import HISTORY_LIMIT, MetricsHistory
from tinylm.core.trainer import TrainMetrics


def metrics(step: int, eval_every: int = 100) -> TrainMetrics:
    val = 1.0 / step if step % eval_every == 0 else None
    return TrainMetrics(step, 10**6, 2.0 / step, val, 0.5 if val else None, 1e-3, 1.0, 1.0, step, 0.0)


def test_bounded_over_a_long_session_with_an_even_spread():
    history = MetricsHistory()
    for step in range(1, 200_001):
        history.append(metrics(step))
        assert len(history) <= HISTORY_LIMIT
    steps = [m.step for m in history]
    assert steps == sorted(steps) and steps[-1] == 200_000  # the latest step always stays
    train = [m.step for m in history if m.val_loss is None]
    assert all(s % history.stride == 0 for s in train[:-1])  # an even stride of the run, from start to end
    assert train[0] <= 2 * history.stride and len(train) >= HISTORY_LIMIT // 4
    evals = [m.step for m in history if m.val_loss is not None]
    assert evals[0] <= 100 * 2 * history.val_stride and evals[-1] == 200_000  # evaluations span the run too
    assert all(m.train_loss == 2.0 / m.step for m in history)  # entries kept whole, not averaged


def test_short_runs_keep_every_step():
    history = MetricsHistory(metrics(s) for s in range(1, 601))
    assert [m.step for m in history] == list(range(1, 601))


def test_a_thinned_history_read_back_goes_on_at_its_stride():
    first = MetricsHistory(limit=64)
    for step in range(1, 1001):
        first.append(metrics(step, eval_every=50))
    saved = json.loads(json.dumps([m.__dict__ for m in first]))
    again = MetricsHistory((TrainMetrics(**m) for m in saved), limit=64)
    assert (again.stride, again.val_stride) == (first.stride, first.val_stride)
    for step in range(1001, 1200):
        first.append(metrics(step, eval_every=50))
        again.append(metrics(step, eval_every=50))
    assert [m.step for m in again] == [m.step for m in first]
