"""The ranking rule: every object, best first, defined once (:func:`ranking_keys`).

``galexplorer rank``, the export, the simulation and the window's live ranking all order objects
by it; :func:`ranking_order` is its fast sort for up to 2^32 rows, :func:`lexsort_order` its
reference, :func:`rerank` its update after a few labels.
"""

from __future__ import annotations

import bisect

import numpy as np

from ..label_scale import MAX_SCORE
from .acquisition import float32_order_bits


def ranking_keys(mean: np.ndarray, labels: np.ndarray, excluded: np.ndarray | None = None,
                 top: float = MAX_SCORE) -> tuple[np.ndarray, ...]:
    """The ranking rule, as sort keys, most significant first (ascending sorts best first).

    1. excluded objects last;
    2. the key: the label of a labelled object, the scorer's mean for the others (NaN = lowest),
       capped at ``top`` so that a labelled 5 is never below an unlabelled prediction;
    3. among equal keys labelled objects first; 4. then higher means; 5. then lower rows.

    Every ordering of the package is this rule: :func:`lexsort_order` sorts by these keys,
    :func:`ranking_order` is a faster sort tested equal to it, and :func:`rerank` puts changed
    objects back by them.

    Args:
        mean: (N,) the scorer's mean.
        labels: (N,) float, NaN where not labelled.
        excluded: (N,) bool, or None.
    """
    n = len(mean)
    raw = np.asarray(mean, dtype=np.float64).copy()
    raw[np.isnan(raw)] = -np.inf
    labels = np.asarray(labels, dtype=np.float64)
    is_lab = ~np.isnan(labels)
    key = np.minimum(np.where(is_lab, labels, raw), top)
    is_ex = np.zeros(n, bool) if excluded is None else np.asarray(excluded, bool)
    return is_ex, -key, ~is_lab, -raw, np.arange(n)


def lexsort_order(mean: np.ndarray, labelled: np.ndarray, labels: np.ndarray,
                  excluded: np.ndarray | None = None, top: float = MAX_SCORE) -> np.ndarray:
    """:func:`ranking_order` by ``np.lexsort`` of :func:`ranking_keys`: its path past 2^32 rows,
    and the reference its packed-key sort is tested against. (N,) int64."""
    full, is_ex = _full_labels(len(mean), labelled, labels, excluded)
    return np.lexsort(ranking_keys(mean, full, is_ex, top)[::-1]).astype(np.int64)


def _full_labels(n: int, labelled, labels, excluded) -> tuple[np.ndarray, np.ndarray]:
    full = np.full(n, np.nan)
    full[np.asarray(labelled, dtype=np.int64)] = labels
    is_ex = np.zeros(n, bool)
    if excluded is not None and len(excluded):
        is_ex[np.asarray(excluded, dtype=np.int64)] = True
    return full, is_ex


def ranking_order(mean: np.ndarray, labelled: np.ndarray, labels: np.ndarray,
                  excluded: np.ndarray | None = None, top: float = MAX_SCORE) -> np.ndarray:
    """Every row, best first, by the rule of :func:`ranking_keys`.

    One sort of N packed integers (the mean's float32 bits and the row): at 10^7 objects a
    fraction of a second where a five-key ``np.lexsort`` takes ~6 s. For unlabelled objects the
    capped key and the raw mean give the same order (the cap is monotone), so they are sorted by
    the mean alone; the few labelled objects are sorted on their own and inserted where their
    key falls.

    Returns:
        (N,) int64.
    """
    n = len(mean)
    if n >= 1 << 32:                          # rows do not fit the packed keys
        return lexsort_order(mean, labelled, labels, excluded, top)
    raw = np.array(mean, dtype=np.float32)
    raw[np.isnan(raw)] = -np.inf
    raw += np.float32(0.0)                    # -0.0 -> +0.0: equal floats, equal keys
    labelled = np.asarray(labelled, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.float32)
    is_lab = np.zeros(n, bool)
    is_lab[labelled] = True
    ex = np.asarray(excluded if excluded is not None else [], dtype=np.int64)
    is_ex = None
    if len(ex):
        is_ex = np.zeros(n, bool)
        is_ex[ex] = True
    cap = np.float32(top)
    parts = []
    for in_ex in (False, True):
        if in_ex and is_ex is None:
            break
        unl_mask = ~is_lab if is_ex is None else (~is_lab & (is_ex if in_ex else ~is_ex))
        unl = np.flatnonzero(unl_mask)
        keys = _descending_keys(raw[unl], unl)                    # sorted; rows in the low half
        lab_sel = labelled if is_ex is None else labelled[is_ex[labelled] == in_ex]
        lab_y = labels if is_ex is None else labels[is_ex[labelled] == in_ex]
        key_l = np.minimum(lab_y, cap) + np.float32(0.0)
        order_l = np.lexsort((lab_sel, -raw[lab_sel].astype(np.float64), -key_l.astype(np.float64)))
        lab_sel, key_l = lab_sel[order_l], key_l[order_l]
        # a labelled object goes before every unlabelled one whose capped mean is <= its key:
        # after those whose mean is above it (all of them keep their place when key >= the cap)
        pos = np.searchsorted(keys, _descending_bits(key_l) << 32, side="left")
        pos[key_l >= cap] = 0
        keys &= np.int64(0xFFFFFFFF)
        parts.append(np.insert(keys, pos, lab_sel) if len(lab_sel) else keys)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _descending_bits(values: np.ndarray) -> np.ndarray:
    """int64 keys that grow as the float32 ``values`` (no NaN) fall: the sort bits of −value."""
    return float32_order_bits(np.negative(np.asarray(values, dtype=np.float32)))


def _descending_keys(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Sorted int64 keys ``bits(−value) << 32 | row``: by decreasing value, ties by increasing row
    (rows below 2^32, see :func:`ranking_order`; ``key & 0xFFFFFFFF`` is the row)."""
    key = _descending_bits(values)
    key <<= 32
    key |= rows
    key.sort()
    return key


def rerank(ranking: np.ndarray, changed: np.ndarray, mean: np.ndarray, labels: np.ndarray,
           excluded: np.ndarray, top: float = MAX_SCORE) -> np.ndarray:
    """``ranking`` after the objects ``changed`` changed label or exclusion: the others keep
    their relative order, the changed ones are taken out and put back by binary search on
    :func:`ranking_keys` (O(N) array work plus O(k log N) comparisons).

    Args:
        ranking: (N,) the order before the change (by the same ``mean``).
        changed: rows whose label or exclusion changed.
        mean, labels, excluded: as :func:`ranking_keys`, with the labels and exclusions now.
    """
    keys = ranking_keys(mean, labels, excluded, top)

    def key(i: int) -> tuple:
        return tuple(k[i] for k in keys)

    moved = np.zeros(len(ranking), bool)
    moved[changed] = True
    kept = ranking[~moved[ranking]]
    moving = sorted(np.asarray(changed).tolist(), key=key)
    at = [bisect.bisect_left(_Keyed(kept, key), key(i)) for i in moving]
    return np.insert(kept, at, moving).astype(np.int64)


class _Keyed:
    """A read-only sequence of keys over an order (for :func:`bisect.bisect_left`)."""

    def __init__(self, order: np.ndarray, key):
        self.order, self.key = order, key

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, pos: int):
        return self.key(int(self.order[pos]))
