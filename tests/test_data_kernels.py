"""The batch-window kernel against its numpy oracle."""

import numpy as np
import pytest

import tinylm.kernels as K
from tinylm.kernels import reference as R


@pytest.mark.parametrize("B, T, n", [(1, 1, 2), (3, 4, 9), (12, 64, 1000)])
def test_gather_windows_matches_reference(B, T, n):
    rng = np.random.default_rng([B, T, n])
    data = rng.integers(0, 65, n).astype(np.int64)
    uniform = rng.random(B)
    uniform[0] = np.nextafter(1.0, 0.0)  # the largest draw still gives a full window
    x, y = np.full((B, T), -1, np.int64), np.full((B, T), -1, np.int64)
    K.gather_windows(x, y, data, uniform)
    want_x, want_y = R.gather_windows(data, uniform, T)
    np.testing.assert_array_equal(x, want_x)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])  # targets are the inputs shifted by one
