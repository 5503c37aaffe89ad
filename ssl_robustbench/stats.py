"""Uncertainty of accuracies measured on n images."""

from __future__ import annotations

import math


def wilson_interval(accuracy: float, n: int, *, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval (95 % by default) of a binomial proportion ``accuracy`` measured on ``n``
    images (Wilson 1927; better than the normal approximation near 0 and 1, where robust accuracies live)."""
    if n <= 0:
        return 0.0, 1.0
    centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)
