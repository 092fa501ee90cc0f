"""Why an object ranks where it does (issue #23 item 10).

For objects of a fitted :class:`~.loop.LoopResult`:

* **the prediction split**: the GP's mean is ``prior(x) + Σⱼ wⱼ(x)·(yⱼ − prior(zⱼ))`` exactly
  (:meth:`~.gp.GaussianProcessRegressor.label_weights`): ``prior`` is the prior mean — for
  ``gp-anomaly`` ``a + b·anomaly``, the anomaly part; for ``gp`` a constant — with the prior's
  ± (the GP's std before any label), and the rest is **what the labels add**; the predicted
  score's ± is the posterior std;
* **the labels that pull it most**: the labelled objects with the largest ``|wⱼ·(yⱼ − prior(zⱼ))|``
  (their kriging weight times their score less the prior there; these terms sum to what the
  labels add), with their weight and score;
* **anomaly percentile**: the share of objects with a lower anomaly score (0–100);
* **nearest labelled neighbour**: the closest labelled object in the learning features, its
  distance and its label (for a labelled object, the closest *other* one: itself at distance 0
  says nothing; none when it is the only label).

Scorers other than the GP have no split (NaN and no pulls); the percentile and the neighbour
are given for every scorer. No Qt, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

#: Labelled objects listed as pulling each object.
TOP_PULLS = 3
CHUNK_ROWS = 4096


@dataclass
class Explanation:
    """The explanation of ``m`` objects (arrays in the order of ``rows``).

    Attributes:
        rows: (m,) int64 the objects.
        mean, std: (m,) the predicted score and its ± (label units).
        prior, prior_std: (m,) the prior (anomaly) part and its ± (NaN without a GP).
        from_labels: (m,) what the labels add (``mean − prior``; NaN without a GP).
        pulls: (m, k) int64 rows of the labelled objects pulling most, strongest first (-1: none).
        pull_labels, pull_weights, pull_contributions: (m, k) their score, weight, and
            ``weight × (score − prior there)`` (label units; NaN where none).
        anomaly_percentile: (m,) 0–100.
        nearest, nearest_distance, nearest_label: (m,) the nearest labelled object (-1, NaN
            without labels), its distance in the learning features and its score.
    """

    rows: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    prior: np.ndarray
    prior_std: np.ndarray
    from_labels: np.ndarray
    pulls: np.ndarray
    pull_labels: np.ndarray
    pull_weights: np.ndarray
    pull_contributions: np.ndarray
    anomaly_percentile: np.ndarray
    nearest: np.ndarray
    nearest_distance: np.ndarray
    nearest_label: np.ndarray

    def describe(self, i: int = 0, ids=None) -> str:
        """Lines of text for the ``i``-th object (``ids``: row -> name, default the row)."""
        name = (lambda r: str(r)) if ids is None else (lambda r: str(ids[r]))
        lines = []
        if np.isfinite(self.prior[i]):
            lines.append(f"predicted {self.mean[i]:.2f} ± {self.std[i]:.2f} = prior {self.prior[i]:.2f} "
                         f"± {self.prior_std[i]:.2f} {'+' if self.from_labels[i] >= 0 else '−'} "
                         f"{abs(self.from_labels[i]):.2f} from the labels")
            for r, y, c in zip(self.pulls[i], self.pull_labels[i], self.pull_contributions[i]):
                if r >= 0:
                    lines.append(f"  {name(r)} (score {y:g}) {'+' if c >= 0 else '−'}{abs(c):.2f}")
        else:
            lines.append(f"predicted {self.mean[i]:.2f}")
        lines.append(f"anomaly percentile {self.anomaly_percentile[i]:.1f}")
        if self.nearest[i] >= 0:
            lines.append(f"nearest labelled: {name(self.nearest[i])} (score {self.nearest_label[i]:g}, "
                         f"distance {self.nearest_distance[i]:.3g})")
        return "\n".join(lines)


def anomaly_percentiles(anomaly: np.ndarray) -> np.ndarray:
    """(N,) float64 the percentage of objects with a lower anomaly score (ties count half)."""
    a = np.asarray(anomaly, dtype=np.float64)
    s = np.sort(a)
    below = np.searchsorted(s, a, side="left")
    equal = np.searchsorted(s, a, side="right") - below
    return 100.0 * (below + 0.5 * (equal - 1)) / max(len(a) - 1, 1)


def explain(result, X: np.ndarray, anomaly: np.ndarray, rows: np.ndarray, top: int = TOP_PULLS) -> Explanation:
    """Explain the prediction of ``rows`` by a fitted result.

    Args:
        result: a :class:`~.loop.LoopResult` (its labels, mean and std; the GP's split where it has one).
        X: (N, k) the learning features the loop fitted on (``ActiveLoop.X``).
        anomaly: (N,) the anomaly score (``ActiveLoop.anomaly_prior()``), for the percentile.
        rows: (m,) rows to explain.
        top: labelled objects listed per row.

    Returns:
        :class:`Explanation`. The std of ``rows`` is computed where the result lacks it.

    Raises:
        ConfigError: rows outside the store, ``top`` < 1, arrays of another length.
    """
    rows = np.asarray(rows, dtype=np.int64).ravel()
    n = len(result.mean)
    if len(rows) and (rows.min() < 0 or rows.max() >= n):
        raise ConfigError(f"rows to explain must lie in 0..{n - 1}")
    if int(top) < 1:
        raise ConfigError(f"top must be >= 1, got {top}")
    if len(X) != n or len(anomaly) != n:
        raise ConfigError(f"features ({len(X)}) and anomaly scores ({len(anomaly)}) must cover the {n} objects")
    m, k = len(rows), int(top)
    labelled = np.asarray(result.labelled, dtype=np.int64)
    labels = np.asarray(result.labels, dtype=np.float64)
    mean = np.asarray(result.mean, dtype=np.float64)[rows]
    std = np.asarray(result.std, dtype=np.float64)[rows]
    model = result._model
    missing = np.isnan(std)
    if missing.any() and model is not None and model.has_std:
        std[missing] = model.exact_std(rows[missing])
    nan = np.full(m, np.nan)
    ex = Explanation(rows, mean, std, nan.copy(), nan.copy(), nan.copy(), np.full((m, k), -1, np.int64),
                     np.full((m, k), np.nan), np.full((m, k), np.nan), np.full((m, k), np.nan),
                     anomaly_percentiles(anomaly)[rows], np.full(m, -1, np.int64), nan.copy(), nan.copy())
    if len(labelled) == 0:
        return ex
    split = getattr(model, "split", None)
    kk = min(k, len(labelled))
    Z = np.asarray(X[labelled], dtype=np.float64)
    z2 = np.einsum("ij,ij->i", Z, Z)
    for a in range(0, m, CHUNK_ROWS):
        r = rows[a:a + CHUNK_ROWS]
        sl = slice(a, a + len(r))
        if split is not None:
            prior, prior_std, W, resid = split(r)
            C = W * resid[None, :]                              # each label's contribution
            ex.prior[sl] = prior
            ex.prior_std[sl] = prior_std
            ex.from_labels[sl] = C.sum(axis=1)
            idx = np.argsort(-np.abs(C), axis=1, kind="stable")[:, :kk]
            ex.pulls[sl, :kk] = labelled[idx]
            ex.pull_labels[sl, :kk] = labels[idx]
            ex.pull_weights[sl, :kk] = np.take_along_axis(W, idx, axis=1)
            ex.pull_contributions[sl, :kk] = np.take_along_axis(C, idx, axis=1)
        Xr = np.asarray(X[r], dtype=np.float64)
        d2 = np.einsum("ij,ij->i", Xr, Xr)[:, None] + z2[None, :] - 2.0 * Xr @ Z.T
        d2[r[:, None] == labelled[None, :]] = np.inf          # a labelled object's neighbour is another one
        j = np.argmin(d2, axis=1)
        best = d2[np.arange(len(r)), j]
        has = np.isfinite(best)
        ex.nearest[sl] = np.where(has, labelled[j], -1)
        ex.nearest_distance[sl] = np.where(has, np.sqrt(np.maximum(best, 0.0)), np.nan)
        ex.nearest_label[sl] = np.where(has, labels[j], np.nan)
    return ex


def explain_columns(k: int = TOP_PULLS) -> tuple[str, ...]:
    """The names of the columns ``export --explain`` adds, in order."""
    pulls = tuple(f"pull_{i}_{what}" for i in range(1, k + 1) for what in ("id", "label", "weight", "contribution"))
    return ("score_prior", "score_prior_std", "score_from_labels", *pulls, "anomaly_percentile",
            "nearest_labelled_id", "nearest_labelled_label", "nearest_labelled_distance")


#: The columns ``export --explain`` adds (see docs/active-learning.md).
EXPLAIN_COLUMNS = explain_columns()


def explain_table(store, table, user: str | None = None, top: int = TOP_PULLS):
    """``table`` (a :class:`~.ranking.RankedTable` of ``store``) with :data:`EXPLAIN_COLUMNS` added.

    The explanation comes from a refit on the current labels (``user``'s, or the consensus)
    with the ranking's options (``table.meta["config"]``): the same fit ``rank`` saves when the
    labels have not changed since.

    Raises:
        ConfigError, StoreError, LabelError: as the refit.
    """
    from ..labels import LabelJournal
    from ..store.ondemand import as_text_value
    from .config import LoopConfig
    from .loop import ActiveLoop
    from .ranking import RankedTable
    from .snapshot import label_snapshot

    order = np.asarray(table.columns["rank"].order if hasattr(table.columns["rank"], "order")
                       else np.argsort(np.asarray(table.columns["rank"])), dtype=np.int64)
    config = LoopConfig.from_dict(table.meta.get("config") or {})
    loop = ActiveLoop(store, config)
    with LabelJournal.for_store(store.path, readonly=True) as journal:
        labelled, labels, excluded = label_snapshot(store, journal, user=user).fit_inputs(config.scorer)
    result = loop.fit(labelled, labels, excluded)
    ex = explain(result, loop.learned_features(result), loop.anomaly_prior(), order, top)
    ids = store.column_view("id")
    lab_sorted = np.sort(np.asarray(result.labelled, dtype=np.int64))
    lab_ids = np.array([as_text_value(v) for v in ids[lab_sorted]], dtype=object) if len(lab_sorted) else \
        np.empty(0, dtype=object)

    def id_of(rows: np.ndarray) -> np.ndarray:
        out = np.full(len(rows), "", dtype=object)
        ok = rows >= 0
        out[ok] = lab_ids[np.searchsorted(lab_sorted, rows[ok])]
        return out

    cols = {"score_prior": ex.prior, "score_prior_std": ex.prior_std, "score_from_labels": ex.from_labels}
    for i in range(top):
        cols[f"pull_{i + 1}_id"] = id_of(ex.pulls[:, i])
        cols[f"pull_{i + 1}_label"] = ex.pull_labels[:, i]
        cols[f"pull_{i + 1}_weight"] = ex.pull_weights[:, i]
        cols[f"pull_{i + 1}_contribution"] = ex.pull_contributions[:, i]
    cols.update({"anomaly_percentile": ex.anomaly_percentile, "nearest_labelled_id": id_of(ex.nearest),
                 "nearest_labelled_label": ex.nearest_label, "nearest_labelled_distance": ex.nearest_distance})
    clash = [c for c in cols if c in table.columns]
    if clash:
        raise ConfigError(f"the store has catalogue column(s) {', '.join(clash)} with the names of the "
                          "explanation's columns", store.path, "export without --explain")
    meta = {**table.meta, "explain": {"scorer": result.scorer, "n_labels": result.n_labels, "pulls": top}}
    return RankedTable({**table.columns, **cols}, meta)
