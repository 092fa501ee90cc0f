"""The GP kernel: ``amplitude · Matern(length_scale, ν=1.5) + WhiteKernel(noise)``, vectorised.

In scikit-learn terms this is ``ConstantKernel(amplitude) * Matern(length_scale, nu=1.5) +
WhiteKernel(noise)`` with an isotropic length scale. With ``d = √3·r/ℓ`` (``r`` the Euclidean
distance) the Matern part is ``(1 + d)·exp(−d)``.

The cross-kernel between many objects and the labelled points is the GP's cost at 10^6 objects,
so it is written to make as few passes over an (rows, n) float32 block as NumPy allows:

* one matrix product gives the scaled squared distances directly, by augmenting the features
  (``[x·s, 1, |x·s|²] · [−2·z·s, |z·s|², 1]ᵀ = |x·s − z·s|²`` with ``s = √3/ℓ``);
* negatives from rounding are cleared through an int32 view (a float with its sign bit set is
  a negative int32), which is cheaper than ``np.maximum`` on floats; or, when the caller asks
  for it, every pair below a threshold (negatives included) gets its exact squared distance
  recomputed from the features — one compare pass, and the near pairs exact;
* ``(1 + d)·exp(−d) = e · u / exp(u)`` with ``u = 1 + d``: three passes instead of four; the
  constant ``e`` is folded into whatever the block is multiplied with next.

Rounding: the squared distance is formed in float32 from norms of order ``k·s²``; its absolute
error ``ε`` changes the kernel by about ``ε/2`` (the Matern-3/2 kernel is flat in ``d²`` at 0),
so the kernel is accurate to ~1e-6 relative to the amplitude for standardised features.
"""

from __future__ import annotations

import math

import numpy as np

SQRT3 = math.sqrt(3.0)


def scaled_augmented(X: np.ndarray, length_scale: float, side: str, dtype=np.float32) -> np.ndarray:
    """Augmented, scaled copy of ``X`` for :func:`matern_block`.

    Args:
        X: (m, k) features.
        length_scale: ℓ of the Matern kernel (feature units).
        side: ``"left"`` for the many objects, ``"right"`` for the labelled points.
        dtype: float32 or float64.

    Returns:
        (m, k + 2) array of ``dtype``.
    """
    dtype = np.dtype(dtype)
    s = dtype.type(SQRT3 / length_scale)        # a scalar of the array's type: no upcast
    Xs = np.asarray(X, dtype=dtype) * s
    sq = np.einsum("ij,ij->i", Xs, Xs, dtype=dtype)
    one = np.ones((len(Xs), 1), dtype=dtype)
    if side == "left":
        return np.hstack([Xs, one, sq[:, None]])
    if side == "right":
        return np.hstack([dtype.type(-2.0) * Xs, sq[:, None], one])
    raise ValueError(f"side must be 'left' or 'right', not {side!r}")


def matern_block(left_aug: np.ndarray, right_aug_t: np.ndarray, out: np.ndarray | None = None,
                 work: np.ndarray | None = None, near: tuple | None = None) -> np.ndarray:
    """``(1 + d)·exp(−d) / e`` for every pair: the Matern-3/2 kernel divided by ``e``.

    Args:
        left_aug: (rows, k + 2) from ``scaled_augmented(..., "left")``.
        right_aug_t: (k + 2, n), the transpose of ``scaled_augmented(..., "right")``, same dtype.
        out, work: optional (rows, n) C-contiguous buffers of that dtype, reused between
            calls: fresh multi-megabyte arrays cost page faults and zeroing on every chunk,
            which at 10^6 rows takes longer than the arithmetic.
        near: ``(tau, X, Z, s)``: recompute, in float64 and without cancellation, the squared
            distance of the pairs whose computed value is below ``tau`` (``X`` (rows, k) and
            ``Z`` (n, k) the unscaled features, ``s = √3/ℓ``). Needed for short length scales
            in float32, where ``|x|² + |z|² − 2x·z`` loses too much next to a labelled point.

    Returns:
        (rows, n) block (``out`` when given); multiply by ``e · amplitude`` for the kernel.
    """
    D = np.matmul(left_aug, right_aug_t, out=out)    # scaled squared distances
    if near is not None:
        # the pairs below tau (rounding negatives included) get their exact value, which is >= 0
        tau, X, Z, s = near
        flat = np.flatnonzero(D.reshape(-1) < tau)
        if len(flat):
            r, c = np.divmod(flat, D.shape[1])
            diff = (np.asarray(X[r], dtype=np.float64) - np.asarray(Z[c], dtype=np.float64)) * s
            D.reshape(-1)[flat] = np.einsum("ij,ij->i", diff, diff)
    else:
        Di = D.view(np.int32 if D.dtype == np.float32 else np.int64)
        np.maximum(Di, 0, out=Di)                    # rounding negatives -> +0.0
    return matern_from_squared(D, work)


def matern_from_squared(D: np.ndarray, work: np.ndarray | None = None) -> np.ndarray:
    """``(1 + d)·exp(−d) / e`` in place of the scaled squared distances ``D = d²`` (≥ 0).

    Args:
        D: (rows, n) float32 or float64, overwritten with the result.
        work: optional buffer like ``D`` for ``exp``.

    Returns:
        ``D``.
    """
    np.sqrt(D, out=D)
    D += D.dtype.type(1.0)                           # u = 1 + d
    with np.errstate(over="ignore"):                 # exp(u) = inf far away: u / inf = 0, right
        E = np.exp(D, out=work)
    np.divide(D, E, out=D)                           # u / exp(u) = (1 + d) exp(-d) / e
    return D


def pairwise_distances64(A: np.ndarray, B: np.ndarray | None = None) -> np.ndarray:
    """Euclidean distances in float64 (for the small labelled-by-labelled matrix).

    Args:
        A: (m, k). B: (p, k) or None for ``A`` itself.

    Returns:
        (m, p) float64, exactly zero on the diagonal when ``B`` is None.
    """
    A = np.asarray(A, dtype=np.float64)
    same = B is None
    B = A if same else np.asarray(B, dtype=np.float64)
    d2 = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * (A @ B.T)
    np.maximum(d2, 0.0, out=d2)
    if same:
        np.fill_diagonal(d2, 0.0)
    return np.sqrt(d2)
