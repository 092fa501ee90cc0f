"""Consensus of several labellers: the median of their current scores per object, and the
disputed flag (more than ⌈N/2⌉ distinct scores among N labellers; Gondhalekar et al. 2024)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Consensus:
    """Consensus labels, one row per labelled object.

    Attributes:
        ids: (M,) object ids (str), sorted.
        score: (M,) float64 median of the users' current scores.
        n_labellers: (M,) int.
        disputed: (M,) bool, more than ⌈N/2⌉ distinct scores among N labellers.
    """

    ids: np.ndarray
    score: np.ndarray
    n_labellers: np.ndarray
    disputed: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.ids.tolist(), self.score.tolist()))


def consensus_of(current: dict[tuple[str, str], int]) -> Consensus:
    """The :class:`Consensus` of every user's current labels ``{(object_id, user): score}``."""
    per_object: dict[str, list[int]] = {}
    for (oid, _), s in sorted(current.items()):
        per_object.setdefault(oid, []).append(s)
    ids = np.array(sorted(per_object), dtype=object)
    scores = [per_object[i] for i in ids]
    n = np.array([len(s) for s in scores], dtype=int)
    med = np.array([float(np.median(s)) for s in scores], dtype=np.float64)
    disputed = np.array([len(set(s)) > math.ceil(len(s) / 2) for s in scores], dtype=bool)
    return Consensus(ids, med, n, disputed)
