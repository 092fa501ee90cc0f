"""Label-based evaluation of a representation: weighted kNN and a linear probe.

With ``--eval-column COLUMN`` the trainer embeds the labelled stamps after each epoch, splits
them (stratified, seeded) into 70% reference and 30% test, and reports

* the weighted kNN accuracy of Wu et al. (2018): each of the k = 20 nearest references (cosine
  similarity s) votes for its class with weight exp(s / 0.07);
* the accuracy of a logistic-regression probe on standardised features (scikit-learn),

the two numbers self-supervised papers use to compare representations.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

log = logging.getLogger(__name__)

MAX_CLASSES = 50


@dataclass
class LabelledSet:
    """Rows with a usable label, and their class index.

    Attributes:
        rows: (M,) int64 row numbers in the cutouts file.
        labels: (M,) int64 class index into ``classes``.
        classes: the class values as strings.
        train, test: index arrays into ``rows`` (stratified split).
    """

    rows: np.ndarray
    labels: np.ndarray
    classes: list[str]
    train: np.ndarray
    test: np.ndarray


def _missing(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        return ~np.isfinite(values)
    if values.dtype.kind in "OUS":
        return np.array([v is None or str(v).strip() in ("", "nan", "NaN", "None") for v in values])
    return np.zeros(len(values), dtype=bool)


def labelled_set(values: np.ndarray, column: str, max_objects: int = 5000, seed: int = 0,
                 test_fraction: float = 0.3) -> LabelledSet:
    """Pick the labelled rows of ``values`` and split them for evaluation.

    Args:
        values: (N,) the label column (str, int, bool or float classes; missing = NaN or "").
        column: its name, for messages.
        max_objects: keep at most this many labelled rows (seeded sample).
        seed: seeds the sample and the split.

    Raises:
        ConfigError: fewer than 2 classes, more than 50 (a continuous column?), or too few rows.
    """
    values = np.asarray(values)
    keep = np.flatnonzero(~_missing(values))
    rng = np.random.default_rng(seed)
    if len(keep) > max_objects:
        keep = np.sort(rng.choice(keep, max_objects, replace=False))
    names = np.array([str(v) for v in values[keep]], dtype=object)
    classes, labels = np.unique(names, return_inverse=True)
    if len(classes) < 2:
        raise ConfigError(f"eval column {column!r} has {len(classes)} class(es) among its labelled rows",
                          hint="it needs at least two classes")
    if len(classes) > MAX_CLASSES or len(classes) > len(keep) // 2:
        raise ConfigError(f"eval column {column!r} has {len(classes)} distinct values among {len(keep)} labelled "
                          "objects; it looks continuous, not a class label",
                          hint=f"use a class column with at most {MAX_CLASSES} values, each on several objects")
    train, test = [], []
    for c in range(len(classes)):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(test_fraction * len(idx)))
        if len(idx) >= 2:
            n_test = min(max(n_test, 1), len(idx) - 1)
        else:
            n_test = 0
        test.extend(idx[:n_test])
        train.extend(idx[n_test:])
    if len(test) < 2 or len(train) < 2:
        raise ConfigError(f"eval column {column!r} has only {len(keep)} labelled objects",
                          hint="label more objects, or drop --eval-column")
    return LabelledSet(keep.astype(np.int64), labels.astype(np.int64), [str(c) for c in classes],
                       np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(test, dtype=np.int64)))


def knn_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                 k: int = 20, temperature: float = 0.07) -> float:
    """Weighted kNN accuracy (Wu et al. 2018) with cosine similarity.

    Args:
        train_x: (M, D) reference embeddings; train_y: (M,) int classes.
        test_x: (T, D) query embeddings; test_y: (T,) int classes.
        k: neighbours (capped at M).
        temperature: weights are exp(similarity / temperature).

    Returns:
        Fraction of test rows whose weighted vote equals their class, in [0, 1].
    """
    a = train_x / np.maximum(np.linalg.norm(train_x, axis=1, keepdims=True), 1e-12)
    b = test_x / np.maximum(np.linalg.norm(test_x, axis=1, keepdims=True), 1e-12)
    sim = b @ a.T                                              # (T, M)
    k = min(k, a.shape[0])
    nn_idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    nn_sim = np.take_along_axis(sim, nn_idx, axis=1)
    w = np.exp((nn_sim - 1.0) / temperature)                   # shifted for range; same argmax
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    votes = np.zeros((len(test_x), n_classes))
    np.add.at(votes, (np.repeat(np.arange(len(test_x)), k), train_y[nn_idx].ravel()), w.ravel())
    return float((votes.argmax(axis=1) == test_y).mean())


def linear_probe_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                          test_y: np.ndarray, seed: int = 0) -> float:
    """Test accuracy of a logistic regression fitted on standardised ``train_x``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    clf = LogisticRegression(max_iter=2000, C=1.0, random_state=seed)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings on tiny sets say nothing useful
        clf.fit(scaler.transform(train_x), train_y)
    return float((clf.predict(scaler.transform(test_x)) == test_y).mean())


def evaluate(embeddings: np.ndarray, ls: LabelledSet, seed: int = 0) -> tuple[float, float]:
    """(kNN accuracy, linear-probe accuracy) of (M, D) embeddings of ``ls.rows``."""
    x = np.asarray(embeddings, dtype=np.float64)
    tr, te = ls.train, ls.test
    knn = knn_accuracy(x[tr], ls.labels[tr], x[te], ls.labels[te])
    lin = linear_probe_accuracy(x[tr], ls.labels[tr], x[te], ls.labels[te], seed)
    return knn, lin
