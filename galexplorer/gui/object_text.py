"""What the explorer says about one object: the hover card, the inspector's rows, the queue's and
the gallery's captions, the candidates table's model headers. Array lookups only (cheap enough
for every hover and every painted row); no Qt."""

from __future__ import annotations

import numpy as np

from ..label_scale import MAX_SCORE, MIN_SCORE, format_prediction
from .objectlist import elide_middle


class ObjectText:
    """The texts of one store's objects.

    Args:
        session: the :class:`~galexplorer.active.session.LabellingSession`.
        score_array: ``score_array(name)`` → the store's (N,) score ``name``.
        model_state: ``model_state()`` → the latest ``ModelState``, or None before the first fit.
        acquisition: ``acquisition()`` → the loop's acquisition name (the table's header says it).
    """

    def __init__(self, session, score_array, model_state, acquisition):
        self.session = session
        self.store = session.store
        self.score_array = score_array
        self.model_state = model_state
        self.acquisition = acquisition

    def _model(self):
        """The latest model, or None before one that learned from labels."""
        s = self.model_state()
        return None if s is None or s.scorer.startswith("prior") else s

    def score_discs_caption(self) -> str:
        """What the map's score discs show: the consensus of everyone's current scores, which
        are the user's own only while nobody else has labelled."""
        n = len(self.session.users())
        return "your scores" if n == 1 else f"scores (consensus of {n} labellers)"

    def describe(self, i: int) -> tuple[str, list[tuple[str, str]]]:
        """Id and key values of object ``i`` for the hover card (cheap: array lookups only)."""
        ses = self.session
        lines: list[tuple[str, str]] = []
        lab = ses.labels[i]
        lines.append(("label", f"{lab:g}" if np.isfinite(lab) else "—"))
        s = self._model()
        if s is not None:
            lines.append(("model", format_prediction(float(s.mean[i]), float(s.std[i]))))
            lines.append(("rank", f"{int(ses.rank[i]):,}"))
        for name in ("anomaly", "cluster"):
            if name in self.store.score_names:
                v = self.score_array(name)[i]
                lines.append((name, f"{v:.3g}" if isinstance(v, (float, np.floating)) else str(v)))
        if ses.excluded[i]:
            lines.append(("excluded", "artefact"))
        return str(ses.ids[i]), lines

    def details(self, i: int) -> list[tuple[str, object]]:
        """Rows of the inspector's table for object ``i``."""
        ses = self.session
        rows: list[tuple[str, object]] = []
        lab = ses.labels[i]
        rows.append(("label (consensus)", float(lab) if np.isfinite(lab) else None))
        s = self._model()
        if s is not None:
            rows.append(("model score", format_prediction(float(s.mean[i]), float(s.std[i]))))
            rows.append(("acquisition", float(s.acquisition[i]) if np.isfinite(s.acquisition[i]) else None))
            rows.append(("rank", f"{int(ses.rank[i]):,} of {len(ses.rank):,}"))
        for name in self.store.score_names:
            v = self.score_array(name)[i]
            rows.append((name, v.item() if hasattr(v, "item") else v))
        for name in self.store.column_names:   # this row only, read from the store
            v = self.store.values_at(name, [i])[0]
            rows.append((name, v.item() if hasattr(v, "item") else v))
        return rows

    def column_headers(self) -> dict[str, tuple[str, str]]:
        """(header, tooltip) of the table's model columns, by what they hold now: the anomaly
        prior before the first model (the export's ``score_mean`` is then that prior too),
        the model's prediction as of its last refit after."""
        s = self._model()
        if s is None:
            return {
                "score_mean": ("prior: anomaly (0–5)",
                               "score_mean: no model yet — the anomaly score rescaled onto 0–5, which "
                               "orders the first batch (a model replaces it after the first labels)"),
                "score_std": ("model ± (no model yet)", "score_std: the model's uncertainty (none yet)"),
                "acquisition": ("acquisition (no model yet)", "acquisition: the model's pick value (none yet)"),
            }
        return {
            "score_mean": ("model mean (0–5)",
                           f"score_mean: the model's predicted score as of its last refit ({s.description}); "
                           f"shown clipped to {MIN_SCORE}–{MAX_SCORE} (≥{MAX_SCORE}, ≤{MIN_SCORE}), ranked by "
                           "the exact value; label, n_labellers, disputed and rank follow the labels at once"),
            "score_std": ("model ±", "score_std: the model's uncertainty (one standard deviation)"),
            "acquisition": ("acquisition", f"acquisition: the value the {self.acquisition()} pick uses"),
        }

    def queue_caption(self, i: int) -> str:
        """The queue's caption: the id, and the model's prediction (or "first batch")."""
        oid = elide_middle(str(self.session.ids[i]))
        s = self._model()
        if s is None:
            return f"{oid}\nfirst batch"
        return f"{oid}\nmodel {format_prediction(float(s.mean[i]), float(s.std[i]))}"

    def gallery_caption(self, i: int, v) -> str:
        """The gallery's caption: the id, and the value shown (similarity), label, exclusion."""
        ses = self.session
        oid = elide_middle(str(ses.ids[i]))
        lab = ses.labels[i]
        bits = []
        if v is not None and np.isfinite(v):
            bits.append(f"{v:.3f}")
        if np.isfinite(lab):
            bits.append(f"★{lab:g}")
        if ses.excluded[i]:
            bits.append("✕")
        return oid + ("\n" + " · ".join(bits) if bits else "")

    def tooltip(self, i: int) -> str:
        """A list row's tooltip: the hover card's lines."""
        oid, lines = self.describe(i)
        return oid + "\n" + "\n".join(f"{k}: {val}" for k, val in lines)
