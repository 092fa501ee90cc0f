"""Which representation the scorer learns on, chosen on the labels so far (issue #22 item 3).

A store can hold, besides the learning features of its embedding (:mod:`.features`), the
representations ``embed`` computed from the cutouts (:mod:`galexplorer.explore.featuresets`):
``morphology`` (71 hand-made shape numbers, + 2 a band and 1 for several) and ``pixels`` (raw-pixel PCA). On data the encoder
was not tuned to, the embedding may separate the rare class no better than raw pixels, while
morphology separates a class defined by shape well (see docs/active-learning.md, "Which
representation"). So at each refit, with ``LoopConfig.representation = "auto"``:

1. the default is ``combined`` (the embedding and the morphology side by side, each block scaled
   to the same total variance) when the store has morphology, else the embedding
   (:func:`default_for`): combined was the best fixed set, or tied, on every domain measured,
   trained encoder or raw-pixel PCA;
2. with at least :data:`MIN_CLASS` finds (label ≥ ``interesting_above``) and as many non-finds,
   every available set is scored by stratified k-fold cross-validation (k = min(5, finds,
   non-finds)) of a class-balanced logistic regression of "interesting" on the labelled objects:
   the average precision of the out-of-fold decision values;
3. the best is used when it beats the default's by more than :data:`MARGIN` (otherwise the
   default: noise in a handful of folds must not flip the representation at every refit);
4. with fewer finds, or fewer than :data:`MIN_LABELS` labels, the default is kept and the reason
   is said. (Before any find, the sets used to be compared by how well they predict the common
   classes' 0-1 scores; that says nothing about the rare class, and on a raw-pixel-PCA radio
   store it moved the loop to morphology, where it found 1 of 60 rare objects against 48 for
   combined - issue #22, benchmarks/bench_auto_representation.py.)

With ``LoopConfig.auto_wide`` the candidates also hold the embedding's **wide view** (``wide``: at
most 32 leading principal components above the noise floor, each to unit variance; and
``combined-wide``, it beside the morphology). They never replace the default before the labels
can compare the sets, so the cold start is the default view's (the wide view alone loses it on
benchmarks/bench_discovery.py's low-rank store); both can also be fixed with ``representation``.
With ``LoopConfig.widen_after = N`` the set kept by default becomes the wide one (``combined-wide``,
or ``wide`` without morphology) once N labels are finds, and the wide sets become candidates then
(:func:`candidates`): the cold start is the default view's, the search after it the wide view's
(measured in benchmarks/bench_loop_features.py; not the default, docs/active-learning.md).

The choice, the scores and the reason go into ``LoopResult.info["representation"]`` (the status
bar and the export's ``.json`` show them). A fixed ``representation`` skips the comparison.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from .features import standardise
from .registry import REPRESENTATIONS

log = logging.getLogger(__name__)

DEFAULT = "embedding"
COMBINED = "combined"
WIDE = "wide"
COMBINED_WIDE = "combined-wide"
MIN_LABELS = 20
MIN_CLASS = 3
MARGIN = 0.02
MAX_CV_ROWS = 5000


@dataclass
class RepresentationChoice:
    """The representation a refit used, and why.

    Attributes:
        used: the name of the set the scorer was fitted on.
        scores: cross-validated average precision of each candidate (empty when not compared).
        reason: one line for the status bar.
    """

    used: str
    scores: dict[str, float] = field(default_factory=dict)
    reason: str = ""

    def to_dict(self) -> dict:
        return {"used": self.used, "cv_average_precision": dict(self.scores), "reason": self.reason}


def check_representation(name: str) -> str:
    if name not in REPRESENTATIONS:
        raise ConfigError(f"unknown representation {name!r}", hint=f"use one of {', '.join(REPRESENTATIONS)}")
    return name


def _block(X: np.ndarray) -> np.ndarray:
    """Scale a standardised block to a total variance of 1 (so blocks of different widths weigh alike)."""
    total = float(np.sum(np.var(X, axis=0, dtype=np.float64)))
    return X / np.float32(np.sqrt(total) if total > 0 else 1.0)


def load_sets(store, embedding: np.ndarray, wide: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The candidate sets of a store: ``embedding`` (the learning features given), and each of
    ``features/morphology`` (per column standardised), ``features/pixels`` (one scale, keeping the
    PCA's geometry) and ``combined`` that the store holds; with ``wide`` (the embedding's wide
    view, :data:`~.registry.WIDE_PCA_COMPONENTS` components each to unit variance) also ``wide``
    and, beside the morphology, ``combined-wide``. Columns with NaN/inf are dropped with a log
    line (a store written by another tool)."""
    sets = {DEFAULT: embedding}
    if wide is not None and len(wide) == len(embedding):
        sets[WIDE] = wide
    have = getattr(store, "feature_set_names", [])     # stand-ins for a store (tests, external tools)
    for name, scaling in (("morphology", "per-component"), ("pixels", "global")):
        if name not in have:
            continue
        X = store.feature_set(name)
        good = np.isfinite(X).all(axis=0)
        if not good.all():
            log.warning("%s: %d columns of features/%s hold NaN or inf; leaving them out", store.path,
                        int((~good).sum()), name)
            X = X[:, good]
        if X.shape[1] and len(X) == len(embedding):
            sets[name] = standardise(X, scaling)
    if "morphology" in sets:
        for name, emb in ((COMBINED, embedding), (COMBINED_WIDE, sets.get(WIDE))):
            if emb is not None:
                sets[name] = np.hstack([_block(emb), _block(sets["morphology"])]) * np.float32(
                    np.sqrt((emb.shape[1] + sets["morphology"].shape[1]) / 2))
    return sets


def cross_validated_ap(X: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    """Out-of-fold average precision of a balanced logistic regression of ``y`` (bool) on ``X``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    k = int(min(5, y.sum(), (~y).sum()))
    model = LogisticRegression(C=0.1, class_weight="balanced", max_iter=1000)
    cv = StratifiedKFold(k, shuffle=True, random_state=seed)
    oof = cross_val_predict(model, X, y, cv=cv, method="decision_function")
    return float(average_precision_score(y, oof))


def default_for(sets: dict[str, np.ndarray], finds: int = 0, widen_after: int | None = None) -> str:
    """The set kept until the labels can compare the sets: ``combined`` where the store has it;
    with ``widen_after`` and at least that many ``finds``, its wide view (``combined-wide``, or
    ``wide`` on a store without morphology) where the sets hold it."""
    base = COMBINED if COMBINED in sets else DEFAULT
    if widen_after is not None and finds >= widen_after:
        wide = COMBINED_WIDE if base == COMBINED else WIDE
        if wide in sets:
            return wide
    return base


def candidates(sets: dict[str, np.ndarray], labels: np.ndarray, threshold: float, auto_wide: bool = False,
               widen_after: int | None = None) -> dict[str, np.ndarray]:
    """The sets ``auto`` compares: the wide ones only with ``auto_wide`` or once the loop has
    widened (``widen_after`` finds)."""
    finds = int(np.sum(np.asarray(labels, np.float64) >= threshold))
    if auto_wide or (widen_after is not None and finds >= widen_after):
        return sets
    return {k: v for k, v in sets.items() if k not in (WIDE, COMBINED_WIDE)}


def choose(sets: dict[str, np.ndarray], labelled: np.ndarray, labels: np.ndarray, threshold: float,
           seed: int = 0, widen_after: int | None = None) -> RepresentationChoice:
    """Compare the sets by cross-validation on the labels (see the module docstring); with
    ``widen_after``, the default moves to its wide view after that many finds."""
    y = np.asarray(labels, np.float64) >= threshold
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    default = default_for(sets, n_pos, widen_after)
    if len(sets) == 1:
        return RepresentationChoice(DEFAULT, reason="embedding (the store has no other representation; "
                                                    "`galexplorer embed --features auto` writes them)")
    if len(labelled) < MIN_LABELS or n_pos < MIN_CLASS or n_neg < MIN_CLASS:
        widened = f"the wide view after {widen_after} find{'s' if widen_after != 1 else ''}; " \
            if default in (WIDE, COMBINED_WIDE) and widen_after is not None else ""
        return RepresentationChoice(default, reason=(
            f"{default} ({widened}too few labels to compare representations: {len(labelled)} labels, {n_pos} finds; "
            f"needs {MIN_LABELS} labels, {MIN_CLASS} finds and {MIN_CLASS} others)"))
    rows = np.asarray(labelled, np.int64)
    if len(rows) > MAX_CV_ROWS:
        pick = np.random.default_rng(seed).choice(len(rows), MAX_CV_ROWS, replace=False)
        rows, y = rows[pick], y[pick]
    what = "cross-validated AP of the finds"
    scores = {name: cross_validated_ap(X[rows], y, seed) for name, X in sets.items()}
    best = max(scores, key=lambda k: (scores[k], k == default))
    if best != default and scores[best] <= scores[default] + MARGIN:
        best = default
    listing = ", ".join(f"{k} {v:.2f}" for k, v in sorted(scores.items(), key=lambda kv: -kv[1]))
    log.info("representation: %s (%s: %s)", best, what, listing)
    return RepresentationChoice(best, scores, f"{best} ({what}: {listing})")
