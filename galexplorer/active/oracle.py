"""A simulated labeller that answers from a catalogue column.

As Mohale & Lochner (2024) did with Galaxy Zoo vote fractions, the column's values are mapped
linearly from their range (min..max over the objects with a value) onto 0..scale and rounded
half up to an integer score::

    score = floor((value − min) / (max − min) · scale + 0.5)

Objects without a value (NaN) are answered 0 (logged).
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import ConfigError
from ..label_scale import MAX_SCORE, MIN_SCORE

log = logging.getLogger(__name__)


class ColumnOracle:
    """Scores 0..scale from a numeric column.

    Args:
        values: (N,) numeric truth column.
        scale: top score, in (0, MAX_SCORE] (the label journal's range is 0–5).
        name: the column's name, for messages.

    Raises:
        ConfigError: not numeric, no finite values, a constant column, or a bad scale.
    """

    def __init__(self, values: np.ndarray, scale: float = MAX_SCORE, name: str = "truth"):
        arr = np.asarray(values)
        if arr.dtype.kind not in "biuf":
            raise ConfigError(f"the truth column {name!r} is not numeric (it holds {arr.dtype.kind!r} values, "
                              f"e.g. {arr[:1].tolist()})", hint="give a numeric column, e.g. a vote fraction")
        if not (np.isfinite(scale) and 0 < scale <= MAX_SCORE):
            raise ConfigError(f"--scale must be in (0, {MAX_SCORE}], got {scale}",
                              hint=f"scores are {MIN_SCORE} to {MAX_SCORE}")
        v = arr.astype(np.float64)
        ok = np.isfinite(v)
        if not ok.any():
            raise ConfigError(f"the truth column {name!r} has no finite values")
        lo, hi = float(v[ok].min()), float(v[ok].max())
        if not hi > lo:
            raise ConfigError(f"the truth column {name!r} is constant ({lo}); nothing to find")
        if not ok.all():
            log.warning("%d object(s) have no %s value; the oracle answers 0 for them", int((~ok).sum()), name)
        s = np.floor((np.where(ok, v, lo) - lo) / (hi - lo) * scale + 0.5)
        self.scores = np.clip(s, 0, scale).astype(np.float32)
        self.name, self.scale, self.low, self.high = name, float(scale), lo, hi

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        """(k,) float32 scores of the objects at ``rows``."""
        return self.scores[np.asarray(rows, dtype=np.int64)]

    def interesting(self, above: float) -> np.ndarray:
        """(N,) bool: oracle score >= ``above``."""
        return self.scores >= above
