"""Acquisition functions (what to label next) and batch selection.

* ``ei``: expected improvement over the best label so far, with exploration trade-off ξ
  (Astronomaly's protege and Walmsley et al. 2022 use ξ = 0.5 on the 0–5 scale)::

      z  = (μ − best − ξ) / σ
      EI = (μ − best − ξ) · Φ(z) + σ · φ(z)          (EI = max(μ − best − ξ, 0) where σ = 0)

* ``ucb``: upper confidence bound ``μ + κ·σ``;
* ``uncertainty``: ``σ`` alone (pure exploration).

All three grow with σ at fixed μ. :func:`select_batch` uses that: with an upper bound on σ
for every object it evaluates the exact σ only for objects whose acquisition *bound* could
still beat the batch found so far, best bound first, and stops when none can.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from ..errors import ConfigError
from ..explore.topk import top_k_positions
from .registry import ACQUISITIONS  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

_INV_SQRT_2PI = np.float32(1.0 / math.sqrt(2.0 * math.pi))


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float, xi: float = 0.5) -> np.ndarray:
    """Expected improvement of each object over ``best + xi``.

    Args:
        mean: (N,) predictive means.
        std: (N,) predictive standard deviations (≥ 0; NaN gives NaN).
        best: the best label so far.
        xi: exploration trade-off, ≥ 0 (label units).

    Returns:
        (N,) float32, ≥ 0.
    """
    mean = np.asarray(mean, dtype=np.float32)
    std = np.asarray(std, dtype=np.float32)
    imp = mean - np.float32(best + xi)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = imp / std
        ei = imp * ndtr(z) + std * _INV_SQRT_2PI * np.exp(np.float32(-0.5) * z * z)
    zero = std == 0
    if zero.any():
        ei[zero] = np.maximum(imp[zero], 0)
    return np.maximum(ei, 0, out=ei, where=~np.isnan(ei)).astype(np.float32, copy=False)


def upper_confidence_bound(mean: np.ndarray, std: np.ndarray, kappa: float = 2.0) -> np.ndarray:
    """``mean + kappa·std``, (N,) float32."""
    return (np.asarray(mean, dtype=np.float32) + np.float32(kappa) * np.asarray(std, dtype=np.float32))


def uncertainty(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``std``, (N,) float32 (``mean`` is ignored; the signature is shared)."""
    del mean
    return np.asarray(std, dtype=np.float32).copy()


@dataclass(frozen=True)
class Acquisition:
    """An acquisition function with its parameters bound: ``acq(mean, std) -> (N,) float32``."""

    name: str
    best: float = 0.0
    xi: float = 0.5
    kappa: float = 2.0

    def __post_init__(self) -> None:
        if self.name not in ACQUISITIONS:
            raise ConfigError(f"unknown acquisition {self.name!r}; choose one of {', '.join(ACQUISITIONS)}")
        if not (np.isfinite(self.xi) and self.xi >= 0):
            raise ConfigError(f"xi must be a number >= 0, got {self.xi!r}")
        if not (np.isfinite(self.kappa) and self.kappa >= 0):
            raise ConfigError(f"kappa must be a number >= 0, got {self.kappa!r}")

    def __call__(self, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        if self.name == "ei":
            return expected_improvement(mean, std, self.best, self.xi)
        if self.name == "ucb":
            return upper_confidence_bound(mean, std, self.kappa)
        return uncertainty(mean, std)


def top_k(values: np.ndarray, k: int, candidates: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` largest values (among ``candidates``), best first; ties by lower index.

    Returns:
        (min(k, n),) int64.
    """
    idx = np.arange(len(values)) if candidates is None else np.asarray(candidates, dtype=np.int64)
    return idx[top_k_positions(np.asarray(values)[idx], idx, k)].astype(np.int64)


@dataclass
class BatchSelection:
    """Result of :func:`select_batch`.

    Attributes:
        batch: (k,) int64, best first.
        evaluated: (m,) int64 rows whose exact std was computed (the batch among them).
        std: (m,) float32 exact std of ``evaluated``.
        acquisition: (m,) float32 acquisition of ``evaluated``.
    """

    batch: np.ndarray
    evaluated: np.ndarray
    std: np.ndarray
    acquisition: np.ndarray


def select_batch(mean: np.ndarray, std_bound: np.ndarray, exact_std: Callable[[np.ndarray], np.ndarray],
                 acquisition: Acquisition, k: int, candidates: np.ndarray,
                 first_chunk: int = 256) -> BatchSelection:
    """The ``k`` candidates with the highest acquisition, computing exact σ only where it matters.

    Candidates are visited in decreasing order of their acquisition *bound*
    ``acq(μ, σ_bound) ≥ acq(μ, σ)``: first ``first_chunk`` of them, then all those whose bound
    exceeds the k-th best exact acquisition found so far, until that k-th value is at least the
    bound of every candidate not yet visited. The result is the same as computing σ for every
    candidate.

    Args:
        mean: (N,) predictive means.
        std_bound: (N,) upper bounds on the std (the exact std makes this a plain top-k).
        exact_std: ``f(rows) -> (len(rows),)`` exact std.
        acquisition: the acquisition function (non-decreasing in σ).
        k: batch size.
        candidates: (c,) int64 rows that may be chosen (unlabelled, not excluded).
        first_chunk: rows evaluated in the first round.

    Returns:
        :class:`BatchSelection`.
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    k = min(int(k), len(candidates))
    if k == 0:
        e = np.empty(0, np.int64)
        return BatchSelection(e, e, np.empty(0, np.float32), np.empty(0, np.float32))
    bound = acquisition(mean[candidates], std_bound[candidates])
    # visit candidates by decreasing bound; only the head of that order is normally needed, so
    # sort the best `head` (argpartition) and the rest only if the search gets that far
    head = min(len(candidates), max(4096, 64 * k))
    if head < len(candidates):
        top = np.argpartition(-bound, head - 1)[:head]
        rest_max = float(np.max(np.delete(bound, top))) if head < len(bound) else -np.inf
    else:
        top, rest_max = np.arange(len(candidates)), -np.inf
    key = top[np.lexsort((candidates[top], -bound[top]))]
    order, bound_sorted = candidates[key], bound[key]
    done = 0
    take_n = max(int(first_chunk), 4 * k)
    rows, stds, acqs = [], [], []
    full = head == len(candidates)
    while True:
        if done >= len(order) and not full:
            # the head is used up without a decision: order all the other candidates
            left = np.ones(len(candidates), bool)
            left[top] = False
            key = np.flatnonzero(left)
            key = key[np.lexsort((candidates[key], -bound[key]))]
            order, bound_sorted, full, done = candidates[key], bound[key], True, 0
        if done >= len(order):
            break
        take = order[done:done + take_n]
        s = np.asarray(exact_std(take), dtype=np.float32)
        rows.append(take)
        stds.append(s)
        acqs.append(acquisition(mean[take], s))
        done += len(take)
        all_acq = np.concatenate(acqs)
        next_bound = bound_sorted[done] if done < len(order) else (rest_max if not full else -np.inf)
        if len(all_acq) < k:
            take_n *= 2
            continue
        kth = np.partition(all_acq, len(all_acq) - k)[len(all_acq) - k]
        if kth >= next_bound:
            break
        # only objects whose bound exceeds the k-th exact value so far can still enter the batch;
        # they are next in ``order`` (sorted by bound): take them all at once
        take_n = max(1, int(np.count_nonzero(bound_sorted[done:] > kth)))
    evaluated = np.concatenate(rows)
    std = np.concatenate(stds)
    acq = np.concatenate(acqs)
    pick = top_k(acq, k)
    log.debug("batch selection: exact std for %d of %d candidates", len(evaluated), len(candidates))
    return BatchSelection(evaluated[pick], evaluated, std, acq)


def float32_order_bits(values: np.ndarray) -> np.ndarray:
    """int64 keys that sort as the float32 ``values`` (no NaN; -0.0 just below +0.0): the IEEE
    bits as an int32, all bits but the sign flipped for negative floats. Shifted left by 32 and
    or-ed with a row below 2^32, they sort by value, ties by row, in one integer sort."""
    b = np.array(values, dtype=np.float32).view(np.int32)
    b ^= (b >> 31) & np.int32(0x7FFFFFFF)
    return b.astype(np.int64)


def spanning_batch(features: np.ndarray, k: int, candidates: np.ndarray | None = None) -> np.ndarray:
    """A first batch that spans the data: sort by the first feature (the first principal
    component), take ``k`` evenly spaced objects. Deterministic.

    Args:
        features: (N, k') features whose column 0 is the first principal component.
        k: batch size.
        candidates: rows allowed (default: all).

    Returns:
        (min(k, c),) int64 row indices, in order along the first component.
    """
    idx = np.arange(len(features)) if candidates is None else np.asarray(candidates, dtype=np.int64)
    if len(idx) == 0 or k <= 0:
        return np.empty(0, dtype=np.int64)
    k = min(int(k), len(idx))
    pos = np.unique(np.round(np.linspace(0, len(idx) - 1, k)).astype(np.int64))
    col = np.asarray(features[idx, 0])
    if col.dtype == np.float32 and len(idx) < 2**32 and np.isfinite(col).all():
        # only k order statistics are needed, not the whole order: one O(N) partition of packed
        # keys (the value's sortable bits, then the position as the tie-break, as the lexsort)
        keys = float32_order_bits(col + np.float32(0.0))          # + 0.0 turns -0.0 into +0.0
        keys <<= 32
        keys |= np.arange(len(idx), dtype=np.int64)
        picked = np.partition(keys, pos)[pos] & np.int64(0xFFFFFFFF)
        return idx[picked]
    order = np.argsort(np.asarray(col, dtype=np.float64), kind="stable")   # ties by position, as lexsort
    return idx[order[pos]].astype(np.int64)


def farthest_batch(features: np.ndarray, labelled: np.ndarray, k: int, candidates: np.ndarray,
                   chunk_rows: int = 65536) -> np.ndarray:
    """``k`` candidates chosen greedily to be far from the labelled objects and from each other.

    For when the model sees nothing to gain anywhere (e.g. every label so far is the same):
    the objects least like anything labelled are the most informative next. Deterministic.

    Args:
        features: (N, d) learning features.
        labelled: (n,) rows already labelled (may be empty).
        k: batch size.
        candidates: (c,) rows that may be chosen.

    Returns:
        (min(k, c),) int64.
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    k = min(int(k), len(candidates))
    if k == 0:
        return np.empty(0, np.int64)
    Xc = features[candidates]
    dmin = np.full(len(candidates), np.inf)

    def update(points: np.ndarray) -> None:
        for p in points:
            for a in range(0, len(Xc), chunk_rows):
                diff = Xc[a:a + chunk_rows] - p
                np.minimum(dmin[a:a + chunk_rows], np.einsum("ij,ij->i", diff, diff), out=dmin[a:a + chunk_rows])

    update(features[np.asarray(labelled, dtype=np.int64)][:256])
    picked = []
    for _ in range(k):
        i = int(np.argmax(dmin)) if np.isfinite(dmin).any() else len(picked)
        picked.append(i)
        update(Xc[i:i + 1])
        dmin[i] = -np.inf
    return candidates[np.array(picked, dtype=np.int64)]
