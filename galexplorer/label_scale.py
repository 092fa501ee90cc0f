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


def format_prediction(mean: float, std: float = float("nan"), digits: int = 2) -> str:
    """A model's predicted score as the windows show it: on the scale, or "≥5" / "≤0" where
    the prediction leaves it (a GP's mean is unbounded; the ranking and the export keep the
    exact value), with "± std" when the std is finite.

    >>> format_prediction(5.104, 1.06)
    '≥5 ± 1.06'
    """
    half = 0.5 * 10.0 ** -digits           # what rounds onto the end of the scale stays a number
    if mean != mean:                       # NaN (no import of math: the CLI reads this at start-up)
        text = "—"
    elif mean >= MAX_SCORE + half:
        text = f"≥{MAX_SCORE}"
    elif mean <= MIN_SCORE - half:
        text = f"≤{MIN_SCORE}"
    else:
        text = f"{mean:.{digits}f}"
    if std == std and abs(std) != float("inf"):
        text += f" ± {std:.{digits}f}"
    return text
