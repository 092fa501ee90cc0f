"""The low-rank upper bound on the GP's predictive std that the mean pass returns for every
object (:meth:`galexplorer.active.gp.GaussianProcessRegressor.predict_mean` with
``std_bound``): the acquisition step uses it to find the few objects whose exact std matters."""

from __future__ import annotations

import numpy as np


def bound_columns(Ks: np.ndarray, Linv: np.ndarray, y_fit: np.ndarray, rank: int, c: float) -> np.ndarray:
    """Columns ``W`` (n, rank + 1) for the bound: ``|(k/c)·W|² ≤ kᵀK⁻¹k``.

    The variance reduction of an object is ``|z|²`` with ``z = L⁻¹k`` (``K = LLᵀ``). For any
    orthonormal ``U`` (n, r), ``|Uᵀz|² ≤ |z|²``, so ``prior − |Uᵀz|²`` bounds the variance
    from above. ``U`` is taken as the leading principal directions of ``z`` over a sample of
    the objects (plus the direction of ``L⁻¹y``, whose projection is the mean), so the bound
    is tight where the data are; ``W = L⁻ᵀU`` turns it into one product with ``k``.

    Args:
        Ks: (m, n) float64 cross-kernel of a sample of m objects with the n labelled points,
            in kernel units (times ``c``).
        Linv: (n, n) the inverse of the Cholesky factor ``L``.
        y_fit: (n,) the normalised labels the GP was fitted to.
        rank: principal directions besides the mean's (fewer when there are fewer labels; the
            missing columns are zero).
        c: the scale the kernel block is computed in (amplitude·e, see
            :func:`~galexplorer.active.kernels.matern_block`).

    Returns:
        (n, rank + 1) float64.
    """
    n_lab = len(y_fit)
    Z = Ks @ Linv.T                                    # rows of z = L^-1 k
    u_mean = Linv @ y_fit                              # z . u_mean = normalised mean
    C = Z.T @ Z
    w, U = np.linalg.eigh(C)
    r = max(1, min(int(rank), n_lab))
    basis = np.column_stack([u_mean, U[:, ::-1][:, :r]])
    Q, _ = np.linalg.qr(basis)
    cols = Linv.T @ Q * c                              # k/c . W = Q^T z
    if cols.shape[1] < rank + 1:  # fewer labels than the rank: pad with zero columns
        cols = np.column_stack([cols, np.zeros((n_lab, rank + 1 - cols.shape[1]))])
    return cols
