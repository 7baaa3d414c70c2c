"""Learning-rate schedules by step: linear warm-up, then constant (with the loop's halving on
validation plateaus) or a cosine decay to ``min_lr`` at ``max_steps``.

Both depend on the step alone, so a resumed run follows the same curve.

References: Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR
2017 (cosine decay); Goyal et al., "Accurate, Large Minibatch SGD", 2017 (warm-up).
"""

from __future__ import annotations

import math

from edgesep.errors import InputError

SCHEDULES = ("plateau", "cosine")


def scheduled_lr(
    step: int, base_lr: float, schedule: str, warmup_steps: int, max_steps: int, min_lr: float
) -> float:
    """The learning rate of step ``step`` (0-based) before any plateau halving."""
    if schedule not in SCHEDULES:
        raise InputError(f"unknown lr_schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if schedule == "plateau":
        return base_lr
    span = max(1, max_steps - warmup_steps)
    t = min(1.0, (step - warmup_steps) / span)
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * t))
