"""Learning-rate schedules as pure functions of the step (nothing to save for an exact resume)."""

from __future__ import annotations

import math


def warmup_cosine(step: int, *, total: int, warmup: int, base: float, final: float = 0.0) -> float:
    """Linear warmup from 0 over ``warmup`` steps, then cosine decay from ``base`` to ``final`` at ``total``."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return final + 0.5 * (base - final) * (1 + math.cos(math.pi * progress))
