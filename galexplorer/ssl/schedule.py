"""Schedules: the learning rate (linear warm-up, then cosine decay) and BYOL's EMA rate tau."""

from __future__ import annotations

import math


def cosine_tau(step: int, total_steps: int, base: float = 0.99) -> float:
    """BYOL's target EMA rate: ``1 - (1 - base) * (cos(pi * step / total) + 1) / 2``.

    Starts at ``base`` (0.99 in Grill et al. 2020) and rises to 1 at the last step, so the
    target network moves less and less.

    Raises:
        ValueError: a negative step, total_steps < 1, or base outside [0, 1].
    """
    if step < 0 or total_steps < 1:
        raise ValueError(f"cosine_tau needs step >= 0 and total_steps >= 1, got {step}, {total_steps}")
    if not 0.0 <= base <= 1.0:
        raise ValueError(f"tau base must be in [0, 1], got {base}")
    t = min(step, total_steps) / total_steps
    return 1.0 - (1.0 - base) * (math.cos(math.pi * t) + 1.0) / 2.0


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, final: float = 0.0) -> float:
    """Learning-rate multiplier at ``step``: linear from 1/warmup to 1, then cosine to ``final``.

    Args:
        step: optimiser steps taken so far (0 for the first step).
        total_steps: steps in the whole run.
        warmup_steps: length of the linear warm-up (0 for none).
        final: multiplier at the end of the run.

    Raises:
        ValueError: negative arguments or warmup_steps > total_steps.
    """
    if step < 0 or total_steps < 1 or warmup_steps < 0 or warmup_steps > total_steps:
        raise ValueError(f"warmup_cosine: invalid step={step}, total_steps={total_steps}, "
                         f"warmup_steps={warmup_steps}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    t = min(step - warmup_steps, span) / span
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * t))


def warmup_steps_for(warmup_epochs: float, epochs: int, steps_per_epoch: int) -> int:
    """Warm-up length in steps: ``warmup_epochs``, but at most a tenth of the run."""
    return int(round(min(warmup_epochs, 0.1 * epochs) * steps_per_epoch))
