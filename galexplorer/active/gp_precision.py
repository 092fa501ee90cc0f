"""Which arithmetic the GP's mean pass may use: the rounding error of a float32 pass, from a
model calibrated against float64 in the tests, and the cheapest mode within a tolerance
(see :class:`galexplorer.active.gp.GaussianProcessRegressor`'s ``precision``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .kernels import SQRT3

PRECISIONS = ("auto", "float32", "mixed", "float64")


@dataclass(frozen=True)
class MeanPrecision:
    """The arithmetic of the mean pass.

    Attributes:
        float32_error, mixed_error: bounds on the rounding error of the mean (label units) with a
            float32 kernel and a float32 / float64 sum.
        near_d2: squared distance (kernel units) under which a float32 pass recomputes the
            distance exactly (0: never needed).
        mode: ``"float32"``, ``"mixed"`` or ``"float64"``.
        dtype: of the kernel block; sum_dtype: of the columns it is multiplied with.
    """

    float32_error: float
    mixed_error: float
    near_d2: float
    mode: str
    dtype: np.dtype
    sum_dtype: np.dtype


def choose_precision(X: np.ndarray, alpha_e: np.ndarray, length_scale: float, y_std: float, tolerance: float,
                     precision: str) -> MeanPrecision:
    """The float32 paths' rounding bounds, and the mode (``precision``, or with ``"auto"`` the
    cheapest whose bound is within ``tolerance``).

    Args:
        X: (n, k) float64 features of the labelled points.
        alpha_e: (n,) the weights ``α`` times amplitude·e (the scale the kernel block is computed in).
        length_scale: the kernel's; y_std: the labels' scale; tolerance: label units.
    """
    # Rounding model of the float32 paths (calibrated against float64 in the tests): each
    # kernel value carries about an ulp of relative error (exp, divide), nearly independently
    # from label to label, so an object's error is a random sum of scale
    # u = eps·|α·amplitude·e|₂·y_std and the largest over N objects grows as sqrt(2 ln N)
    # (5.3 at 10^6). The largest seen over 2·10^4 objects (sqrt(2 ln N) = 4.5) is 0.7 u with a
    # float64 sum and 2 u with a float32 sum; we allow 1.6 u and 5 u. Next to a labelled
    # point the squared distance |x|² + |z|² − 2x·z loses about eps·|z|² (scaled units),
    # which moves the kernel by half that: a term in max|α·amplitude·e|.
    eps = float(np.finfo(np.float32).eps)
    unit = eps * float(np.linalg.norm(alpha_e)) * y_std
    zs2 = float(np.max(np.sum((X * (SQRT3 / length_scale)) ** 2, axis=1)))
    near = 1.5 * eps * zs2 * float(np.abs(alpha_e).max()) * y_std
    # That error decays as exp(-d) with the distance d (kernel units): recomputing the
    # squared distance exactly for the few pairs closer than tau_d bounds it by tolerance/4.
    near_d2 = 0.0
    if near > tolerance / 4:
        near_d2 = math.log(4.0 * near / tolerance) ** 2
        near = tolerance / 4
    float32_error = 5.0 * unit + near
    mixed_error = 1.6 * unit + near
    if precision == "auto":
        mode = ("float32" if float32_error <= tolerance else
                "mixed" if mixed_error <= tolerance else "float64")
    else:
        mode = precision
    return MeanPrecision(float32_error, mixed_error, near_d2, mode,
                         dtype=np.dtype(np.float64 if mode == "float64" else np.float32),
                         sum_dtype=np.dtype(np.float32 if mode == "float32" else np.float64))
