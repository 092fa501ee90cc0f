"""What the scatter is coloured by (no Qt): density, a score, a catalogue column, the model.

:class:`ColourSource` is one choice of the map's Colour box, typed; :class:`MapColours` lists a
store's choices and makes the spec of each.

A :class:`ColourSpec` turns one per-object array into what the scatter needs: either a
continuous value with a fixed display range (so colours do not change while panning), or
category codes with a palette and a legend.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..label_scale import MAX_SCORE, MIN_SCORE

MAX_CATEGORIES = 20

# Distinct, bright enough to read on a dark background (Tableau 20, reordered).
CATEGORY_COLOURS = [
    "#4e9ae8", "#f28e2b", "#59c47d", "#e15759", "#b07aa1", "#edc948", "#76b7b2", "#ff9da7",
    "#9c755f", "#bab0ac", "#86bcb6", "#f1ce63", "#a0cbe8", "#ffbe7d", "#8cd17d", "#d4a6c8",
    "#fabfd2", "#79706e", "#d7b5a6", "#499894",
]

# Label colours 0..5: cool and quiet for "nothing here", hot for "look at this".
SCORE_COLOURS = ["#6b7a90", "#3f8fd8", "#2ebfa5", "#b8d335", "#ffae34", "#ff4d5a"]
DISPUTE_COLOURS = ("#59c47d", "#e15759")   # agreed, disputed (the "disputed labels" colouring)

DENSITY = "density"
PERCENTILES = (1.0, 99.0)   # default colour limits of a continuous column
DIVERGING_MAP = "CET-D1"    # blue - white - red, for values around a centre
SCALES = ("linear", "log")


def hex_to_rgb(colour: str) -> tuple[int, int, int]:
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


@dataclass
class ColourSpec:
    """How to colour the points.

    Attributes:
        name: what the user picked, e.g. "density", "score: anomaly", "column: z".
        kind: "density", "continuous" or "categorical".
        values: (N,) float32, for continuous (NaN = no value) — or int32 codes for categorical
            (-1 = no value).
        vrange: display range of a continuous column (1st and 99th percentiles by default; in
            log10 units when ``scale`` is "log").
        categories: category names, in code order.
        colours: "#rrggbb" per category.
        cmap: colour map name for density and continuous.
    """

    name: str
    kind: str
    values: np.ndarray | None = None
    vrange: tuple[float, float] = (0.0, 1.0)
    categories: list[str] = field(default_factory=list)
    colours: list[str] = field(default_factory=list)
    cmap: str = "inferno"
    scale: str = "linear"
    auto_range: tuple[float, float] = (0.0, 1.0)

    def rgb_weights(self) -> np.ndarray:
        """(3, N) float32 per-object R, G, B (0..255) of a categorical spec (0 for no value)."""
        table = np.array([hex_to_rgb(c) for c in self.colours] + [(0, 0, 0)], dtype=np.float32)
        codes = np.where(self.values >= 0, self.values, len(self.colours))
        return np.ascontiguousarray(table[codes].T)

    def colour_index(self, n_colours: int = 256) -> np.ndarray:
        """(N,) int per-object colour index: category code, or the continuous value quantised to
        ``n_colours`` steps of the colour map (``n_colours`` for no value)."""
        if self.kind == "categorical":
            return np.where(self.values >= 0, self.values, n_colours).astype(np.int32)
        if self.kind == "continuous":
            lo, hi = self.vrange
            t = (self.values - lo) / (hi - lo if hi > lo else 1.0)
            idx = np.clip(np.nan_to_num(t, nan=-1.0) * (n_colours - 1) + 0.5, -1, n_colours - 1)
            return np.where(np.isfinite(self.values), idx, n_colours).astype(np.int32)
        return np.zeros(0 if self.values is None else len(self.values), np.int32)


def density_spec() -> ColourSpec:
    return ColourSpec(DENSITY, "density", cmap="inferno")


def spec_for(name: str, values: np.ndarray, cmap: str = "viridis") -> ColourSpec:
    """Build the colour spec of one per-object array: strings, booleans and integers with at
    most :data:`MAX_CATEGORIES` distinct values are categories, anything else is continuous."""
    values = np.asarray(values)
    kind = values.dtype.kind
    if kind in "OUSb" or (kind in "iu" and len(np.unique(values)) <= MAX_CATEGORIES):
        keys = values.astype(str) if kind in "OUS" else values
        cats, codes = np.unique(keys, return_inverse=True)
        if len(cats) <= MAX_CATEGORIES:
            names = [str(c) for c in cats.tolist()]
            colours = [CATEGORY_COLOURS[i % len(CATEGORY_COLOURS)] for i in range(len(names))]
            return ColourSpec(name, "categorical", codes.astype(np.int32), categories=names, colours=colours)
        # too many distinct strings to colour: fall back to density
        return density_spec()
    v = values.astype(np.float32)
    lo, hi = percentile_range(v)
    return ColourSpec(name, "continuous", v, (lo, hi), cmap=cmap, auto_range=(lo, hi))


def percentile_range(v: np.ndarray, percentiles: tuple[float, float] = PERCENTILES) -> tuple[float, float]:
    """Colour limits of the finite values: the given percentiles (the full range when they
    coincide; (0, 1) without any finite value)."""
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = (float(q) for q in np.percentile(finite, list(percentiles)))
    if not hi > lo:
        lo, hi = float(finite.min()), float(finite.max())
        if not hi > lo:
            hi = lo + 1.0
    return lo, hi


def adjust(spec: ColourSpec, scale: str = "linear", diverging: bool = False,
           limits: tuple[float | None, float | None] = (None, None)) -> ColourSpec:
    """A continuous spec shown another way: log10 scale (values <= 0 get no colour), a
    diverging map centred on the median, and limits typed by the user (None: the percentile
    limit, in the scale's units). Other specs are returned as they are."""
    if spec.kind != "continuous":
        return spec
    if scale not in SCALES:
        raise ValueError(f"unknown colour scale {scale!r}; use one of {', '.join(SCALES)}")
    v = spec.values
    name = spec.name
    if scale == "log":
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(v > 0, np.log10(np.where(v > 0, v, 1)), np.nan).astype(np.float32)
        name += " (log10)"
    lo, hi = percentile_range(v) if scale == "log" else spec.vrange
    auto = (lo, hi)
    cmap = spec.cmap
    if diverging:
        finite = v[np.isfinite(v)]
        mid = float(np.median(finite)) if finite.size else 0.0
        half = max(abs(lo - mid), abs(hi - mid)) or 1.0
        lo, hi = mid - half, mid + half
        cmap = DIVERGING_MAP
    lo = lo if limits[0] is None else float(limits[0])
    hi = hi if limits[1] is None else float(limits[1])
    if not hi > lo:
        hi = lo + 1e-6 * max(1.0, abs(lo))
    return ColourSpec(name, "continuous", v, (lo, hi), cmap=cmap, scale=scale, auto_range=auto)


# -- what the map can be coloured by ---------------------------------------------------------------
_MODEL_OUTPUTS = {"mean": ("model: predicted score", "plasma"), "std": ("model: uncertainty", "viridis"),
                  "acquisition": ("model: acquisition", "plasma")}


@dataclass(frozen=True)
class ColourSource:
    """One entry of the map's Colour box: what it colours by, typed (never parsed back from its
    label).

    Attributes:
        kind: "density", "model" (``key``: "mean", "std" or "acquisition"), "labels" (the
            consensus), "user" (``key``: a labeller's name), "disputed", "score" (``key``: a
            score of the store) or "column" (``key``: a catalogue column).
        key: which one, for the kinds that have several.
    """

    kind: str
    key: str = ""

    @property
    def label(self) -> str:
        """The text the Colour box shows (and the colour spec's name)."""
        if self.kind == "model":
            return _MODEL_OUTPUTS[self.key][0]
        return {"density": DENSITY, "labels": "your labels (consensus)", "user": f"labels by {self.key}",
                "disputed": "disputed labels", "score": f"score: {self.key}",
                "column": f"column: {self.key}"}[self.kind]

    @property
    def follows_labels(self) -> bool:
        """Its colours change with every score (redrawn at once, not at the next refit)."""
        return self.kind in ("labels", "user", "disputed")


DENSITY_SOURCE = ColourSource("density")


class MapColours:
    """What one store's map can be coloured by, and the colour spec of each choice.

    Args:
        session: the :class:`~galexplorer.active.session.LabellingSession` (labels, labellers,
            disputes).
        score_array: ``score_array(name)`` → the store's (N,) score ``name``.
        model_state: ``model_state()`` → the latest ``ModelState``, or None before the first fit.
    """

    def __init__(self, session, score_array, model_state):
        self.session = session
        self.store = session.store
        self.score_array = score_array
        self.model_state = model_state

    def _has_model(self) -> bool:
        s = self.model_state()
        return s is not None and not s.scorer.startswith("prior")

    def sources(self) -> list[ColourSource]:
        """The Colour box's entries, in order: density, the model's outputs (once there is a
        model), the labels (consensus, per labeller, disputes), the store's scores and columns."""
        out = [DENSITY_SOURCE]
        if self._has_model():
            out += [ColourSource("model", "mean"), ColourSource("model", "acquisition")]
            if np.isfinite(self.model_state().std).any():
                out.insert(2, ColourSource("model", "std"))
        out.append(ColourSource("labels"))
        out += [ColourSource("user", u) for u in self.session.users()]
        out.append(ColourSource("disputed"))
        out += [ColourSource("score", s) for s in self.store.score_names]
        out += [ColourSource("column", c) for c in self.store.column_names]
        return out

    def spec(self, source: ColourSource, scale: str = "linear", diverging: bool = False,
             limits: tuple[float | None, float | None] = (None, None)) -> ColourSpec:
        """What to colour the map by: a continuous column between its 1st and 99th percentiles
        unless ``limits`` say otherwise, on a linear or log ``scale``, with a sequential or a
        ``diverging`` map."""
        return adjust(self._spec(source), scale, diverging, limits)

    def _spec(self, source: ColourSource) -> ColourSpec:
        kind, key, name = source.kind, source.key, source.label
        ses, state = self.session, self.model_state()
        if kind == "model" and state is not None:
            return spec_for(name, getattr(state, key), cmap=_MODEL_OUTPUTS[key][1])
        if kind in ("labels", "user"):
            spec = spec_for(name, ses.labels if kind == "labels" else ses.user_labels(key), cmap="plasma")
            spec.vrange = (float(MIN_SCORE), float(MAX_SCORE))
            return spec
        if kind == "disputed":
            labelled = np.isfinite(ses.labels)
            codes = np.where(ses.disputed, 1, np.where(labelled, 0, -1)).astype(np.int32)
            return ColourSpec(name, "categorical", codes, categories=["agreed", "disputed"],
                              colours=list(DISPUTE_COLOURS))
        if kind == "score":
            return spec_for(name, self.score_array(key), cmap="viridis")
        if kind == "column":
            return spec_for(name, self.store.column(key), cmap="viridis")
        return density_spec()
