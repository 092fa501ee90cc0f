"""The one check every analysis stage applies to its input features."""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def feature_matrix(x: np.ndarray, what: str, dtype=np.float32) -> np.ndarray:
    """``x`` as a finite (N, D) array of ``dtype`` with N >= 1.

    Args:
        what: the stage, for messages ("the projection", "the isolation forest", ...).

    Raises:
        InputError: another shape, no rows, or NaN/inf values.
    """
    x = np.asarray(x, dtype=dtype)
    if x.ndim != 2 or len(x) == 0:
        raise InputError(f"{what} needs an (N, D) array with N >= 1, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InputError(f"the features given to {what} contain NaN or inf")
    return x
