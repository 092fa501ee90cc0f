"""The options an encoder refine and a head refine share, and their checks (issue #24).

:class:`~galexplorer.ssl.refine.RefineConfig` (an encoder) and
:class:`~galexplorer.ssl.refine_head.HeadRefineConfig` (a head on the user's own embeddings)
both train "interesting or not" by FixMatch with a held-out set to stop on; the fields and checks
of that training are declared here once. Each subclass sets its own defaults where they differ,
adds its own fields and checks in :meth:`FixMatchConfig._validate_own`, and names itself in the
messages (``_NAME``). The JSON written beside a refine's output is :meth:`FixMatchConfig.to_dict`
(every field, the subclass's included).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError


@dataclass
class FixMatchConfig:
    """Options of a FixMatch refine on the user's labels (the defaults are an encoder's)."""

    _NAME: ClassVar[str] = "refine"
    # whole-number options that must be >= 1, in the order they are checked
    _COUNTS: ClassVar[tuple[str, ...]] = ("epochs", "fixed_epochs", "patience", "batch_size")

    epochs: int = 20          # at most; early stopping on the held-out labels
    fixed_epochs: int = 6     # without a held-out set (fewer than MIN_FINDS_FOR_HOLDOUT finds), at most epochs
    patience: int = 4
    batch_size: int = 32
    unlabelled_ratio: int = 2
    confidence: float = 0.95
    unlabelled_weight: float = 1.0
    lr: float = 1e-4
    weight_decay: float = 1e-4
    holdout: float = 0.25
    interesting_above: float = 3.0
    seed: int = 0
    device: str = "auto"

    def validate(self):
        """Check the options; returns ``self``.

        Raises:
            ConfigError: a count below 1, a negative ``unlabelled_ratio``, ``confidence`` outside
                (0.5, 1), ``holdout`` outside (0, 0.5), or a subclass's own bad option.
        """
        kind = self._NAME         # "refine" or "head refine"
        for name in self._COUNTS:
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{kind} {name} must be >= 1, got {getattr(self, name)!r}")
        self._validate_counts()
        if self.unlabelled_ratio < 0:
            raise ConfigError(f"unlabelled_ratio must be >= 0, got {self.unlabelled_ratio!r}")
        if not 0.5 < self.confidence < 1:
            raise ConfigError(f"confidence must be in (0.5, 1), got {self.confidence!r}")
        if not 0 < self.holdout < 0.5:
            raise ConfigError(f"holdout must be in (0, 0.5), got {self.holdout!r}")
        self._validate_own()
        return self

    def _validate_counts(self) -> None:
        """A subclass's checks of its other whole-number options (after ``_COUNTS``)."""

    def _validate_own(self) -> None:
        """A subclass's checks of its rates and other options (after the shared ones)."""

    def finds(self, labels: np.ndarray) -> np.ndarray:
        """(n,) bool: which of the (n,) 0-5 ``labels`` are finds (>= ``interesting_above``).

        Raises:
            ConfigError: no finds, or no other labels, to learn the difference from.
        """
        y = np.asarray(labels) >= self.interesting_above
        n_pos, n_neg = int(y.sum()), int((~y).sum())
        if n_pos == 0 or n_neg == 0:
            raise ConfigError(f"refining needs labels on both sides of {self.interesting_above:g}: "
                              f"{n_pos} finds and {n_neg} others so far",
                              hint="label more objects (a few finds and a few ordinary ones) first")
        return y

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        """The config of :meth:`to_dict`'s ``values`` (keys that are not fields are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


__all__ = ["FixMatchConfig"]
