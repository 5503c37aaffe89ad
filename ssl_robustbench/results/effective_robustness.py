"""Effective robustness (Taori et al., "Measuring Robustness to Natural Distribution Shifts in Image
Classification", NeurIPS 2020): across the models of one board, out-of-distribution accuracy is fitted as a linear
function of in-distribution (clean) accuracy on logit axes; a model's effective robustness is how far its OOD
accuracy lies above that fit, in accuracy points. Only within a board (the same images, head recipe and settings),
and only with at least ``MIN_MODELS`` models: with fewer, the fit passes through every point."""

from __future__ import annotations

import math

import numpy as np

MIN_MODELS = 3
_EDGE = 1e-3  # accuracies are clipped to [EDGE, 1 − EDGE] before the logit (0 % and 100 % have none)


def logit(p: float) -> float:
    p = min(max(p, _EDGE), 1 - _EDGE)
    return math.log(p / (1 - p))


def linear_fit(clean: list[float], ood: list[float]) -> tuple[float, float]:
    """Least-squares slope and intercept of logit(OOD) on logit(clean) (accuracies as fractions)."""
    x = np.array([logit(c) for c in clean])
    y = np.array([logit(o) for o in ood])
    if np.ptp(x) == 0:  # every model equally accurate in distribution: a flat fit through the mean
        return 0.0, float(y.mean())
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def effective_robustness(clean: list[float], ood: list[float]) -> list[float] | None:
    """Each model's OOD accuracy minus the fit's prediction at its clean accuracy (fractions in, fractions out),
    or None with fewer than ``MIN_MODELS`` models."""
    if len(clean) < MIN_MODELS:
        return None
    slope, intercept = linear_fit(clean, ood)
    return [o - 1 / (1 + math.exp(-(slope * logit(c) + intercept))) for c, o in zip(clean, ood, strict=True)]
