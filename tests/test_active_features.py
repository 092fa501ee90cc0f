"""The learning features' standardisation (chunked variance) and the model state's queue."""

from __future__ import annotations

import numpy as np
import pytest

from galexplorer.active.features import standardise
from galexplorer.active.session import _by_value


@pytest.mark.parametrize("scaling", ["global", "per-component"])
def test_chunked_standardise_equals_numpy(scaling):
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(300_000, 5)) * [1, 2, 0.5, 3, 0] + 7).astype(np.float32)   # > one chunk, a constant column
    out = standardise(X, scaling)
    mean, std = X.mean(0, dtype=np.float64), X.std(0, dtype=np.float64)
    if scaling == "global":
        std = np.full_like(std, np.sqrt(np.mean(std ** 2)))
    std[std == 0] = 1.0
    np.testing.assert_allclose(out, (X - mean) / std, atol=2e-5)


def test_by_value_is_highest_first_ties_by_row_nan_dropped():
    v = np.array([1.0, np.nan, 3.0, 1.0, 3.0, -np.inf, 0.5])
    np.testing.assert_array_equal(_by_value(v), [2, 4, 0, 3, 6])
