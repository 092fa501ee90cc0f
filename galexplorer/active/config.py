"""The loop's options, :class:`LoopConfig` (light: the CLI reads its defaults before anything
heavy loads, and saves it as JSON with every ranking)."""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass

from ..errors import ConfigError
from ..presets import load_preset
from .registry import (
    ACQUISITIONS,
    COLD_STARTS,
    DEFAULT_ACQUISITION,
    DEFAULT_COLD_START,
    DEFAULT_REPRESENTATION,
    DEFAULT_SCORER,
    FEATURE_SCALINGS,
    SCORERS,
    WIDE_PCA_COMPONENTS,
)


@dataclass
class LoopConfig:
    """Options of the loop (saved as JSON with every ranking).

    Attributes:
        scorer: one of :data:`~galexplorer.active.scorers.SCORERS`.
        acquisition: ``ei`` (expected improvement), ``ucb`` (upper confidence bound) or
            ``uncertainty``; scorers without a std (neighbour, iforest, lof) pick the highest mean.
        xi: EI's exploration trade-off, label units (0.5 as Astronomaly's protege).
        kappa: UCB's weight of the std.
        batch_size: objects per batch.
        seed: seed of every random step.
        knn_k: neighbours of the kNN label transfer.
        knn_space: ``embeddings`` (cosine of the raw embeddings, as Gondhalekar et al.) or
            ``features`` (cosine of the learning features; no embeddings loaded).
        pca_components: at most this many leading principal components of the embedding, those
            above its noise floor (the wider view, e.g. 32 with ``feature_scaling="per-component"``:
            see docs/active-learning.md); None (the default): as many as ``pca_variance`` needs.
        pca_variance: variance fraction the learning features keep when ``pca_components`` is None.
        feature_scaling: ``global`` (one factor for all components, keeps the PCA's geometry) or
            ``per-component`` (whitening); see :mod:`galexplorer.active.features`.
        iforest_trees, lof_neighbors: the anomaly detectors' sizes (Astronomaly: 200, 50).
        gp_restarts: random restarts of the GP hyper-parameter search (besides the default start).
        gp_precision: ``auto``, ``float32`` or ``float64`` for the GP mean.
        full_std: compute the exact std of every object on every fit (slow at 10^6 for the GP).
        interesting_above: a label ≥ this is a find: an anomaly for ``aad``/``pine``, a hit for
            the portfolio's bandit.
        representation: what the scorer learns on: ``auto`` (at each refit, the store's
            representation with the best cross-validated average precision on the labels so far;
            see :mod:`galexplorer.active.representation`), ``embedding``, ``morphology``,
            ``pixels`` or ``combined``.
        auto_wide: with ``representation="auto"``, also compare the embedding's wide view
            (``wide``, and ``combined-wide`` beside the morphology; see
            :mod:`galexplorer.active.representation`) once the labels can compare the sets.
        widen_after: with ``representation="auto"``, once the labels hold this many finds, the
            set kept by default moves to the embedding's wide view (``combined`` →
            ``combined-wide``, ``embedding`` → ``wide``) and the wide sets become candidates; None:
            never. The cold start, before the finds, is the default view's either way.
        cold_start: what the next batch holds while no label is ≥ ``interesting_above``:
            ``model`` (the default: the acquisition alone) or ``random-share`` (after the
            spanning batch, a growing share drawn at random; see
            :mod:`galexplorer.active.cold_start`). Not applied to the portfolio, which hedges
            by itself.
    """

    scorer: str = DEFAULT_SCORER
    acquisition: str = DEFAULT_ACQUISITION
    xi: float = 0.5
    kappa: float = 2.0
    batch_size: int = 10
    seed: int = 0
    knn_k: int = 4
    knn_space: str = "embeddings"
    pca_components: int | None = None
    pca_variance: float = 0.95
    feature_scaling: str = "global"
    iforest_trees: int = 200
    lof_neighbors: int = 50
    gp_restarts: int = 0
    gp_precision: str = "auto"
    full_std: bool = False
    interesting_above: float = 3.0
    representation: str = DEFAULT_REPRESENTATION
    auto_wide: bool = False
    widen_after: int | None = None
    cold_start: str = DEFAULT_COLD_START

    def __post_init__(self) -> None:
        if self.scorer not in SCORERS:
            raise ConfigError(f"unknown scorer {self.scorer!r}; choose one of {', '.join(SCORERS)}")
        if self.acquisition not in ACQUISITIONS:
            raise ConfigError(f"unknown acquisition {self.acquisition!r}; choose one of {', '.join(ACQUISITIONS)}")
        if not (math.isfinite(self.xi) and self.xi >= 0):
            raise ConfigError(f"xi must be a number >= 0, got {self.xi!r}", hint="the default is 0.5")
        if int(self.batch_size) < 1:
            raise ConfigError(f"batch size must be >= 1, got {self.batch_size!r}")
        if int(self.knn_k) < 1:
            raise ConfigError(f"knn k must be >= 1, got {self.knn_k!r}")
        if self.feature_scaling not in FEATURE_SCALINGS:
            raise ConfigError(f"feature scaling must be one of {', '.join(FEATURE_SCALINGS)}, "
                              f"not {self.feature_scaling!r}")
        if self.pca_components is not None:
            check_components(self.pca_components)
        if self.widen_after is not None and (isinstance(self.widen_after, bool)
                                             or not isinstance(self.widen_after, numbers.Integral)
                                             or self.widen_after < 1):
            raise ConfigError(f"widen_after must be a whole number of finds >= 1, got {self.widen_after!r}",
                              hint="e.g. 1 (widen at the first find), or none to keep the default view")
        from .representation import check_representation

        check_representation(self.representation)
        if self.widen_after is not None and self.representation != "auto":
            raise ConfigError(f"widen_after applies to the representation auto, not {self.representation!r}",
                              hint="use --representation auto with --widen-after, or a fixed wide view: "
                                   "--representation wide or combined-wide")
        if self.cold_start not in COLD_STARTS:
            raise ConfigError(f"unknown cold start {self.cold_start!r}; choose one of {', '.join(COLD_STARTS)}")
        if self.knn_space not in ("embeddings", "features"):
            raise ConfigError(f"knn_space must be 'embeddings' or 'features', not {self.knn_space!r}")

    def features_key(self) -> tuple:
        """The options that decide the learning features (equal keys: the same features)."""
        return self.pca_components, self.pca_variance, self.feature_scaling

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> LoopConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def check_components(components) -> int:
    """``components`` (the loop's number of PCA components) as an int >= 1, or a one-line ConfigError."""
    if isinstance(components, bool) or not isinstance(components, numbers.Integral) or components < 1:
        raise ConfigError(f"the number of PCA components must be a whole number >= 1, got {components!r}",
                          hint=f"e.g. {WIDE_PCA_COMPONENTS}, or none for the components that explain 95% of the variance")
    return int(components)


def loop_config(options: dict | None = None, preset: str | None = None) -> LoopConfig:
    """The loop's options from the defaults < a shipped loop ``preset`` < ``options``.

    Args:
        options: :class:`LoopConfig` field names to values, None meaning "not given" (the
            command line's options).
        preset: the name of a loop preset (``galexplorer/resources/presets/loop/``), or None.

    Raises:
        ConfigError: an unknown preset, an unknown option in it, or an invalid value.
    """
    names = {f.name for f in dataclasses.fields(LoopConfig)}
    values: dict = {}
    if preset:
        for raw, value in load_preset(preset, "loop").items():
            key = raw.strip().replace("-", "_")
            if key not in names:
                raise ConfigError(f"unknown loop option {raw!r}", f"preset {preset}",
                                  f"valid: {', '.join(sorted(names))}")
            values[key] = value
    values.update({k: v for k, v in (options or {}).items() if v is not None})
    return LoopConfig(**values)


__all__ = ["LoopConfig", "check_components", "loop_config"]
