"""The 0–5 interestingness scale of every label (no imports: the CLI reads it at start-up).

Every place that needs the scale — the journal's validation, the score keys and buttons, the
counters, the scorers' 0–5 range, ``simulate --scale`` — reads it from here.
"""

from __future__ import annotations

#: The lowest and highest score a user can give.
MIN_SCORE, MAX_SCORE = 0, 5
#: Every score, lowest first.
SCORES: tuple[int, ...] = tuple(range(MIN_SCORE, MAX_SCORE + 1))


def clip_to_scale(value: float) -> float:
    """``value`` clipped onto [MIN_SCORE, MAX_SCORE] (a model's prediction can leave the scale)."""
    return min(max(float(value), float(MIN_SCORE)), float(MAX_SCORE))
