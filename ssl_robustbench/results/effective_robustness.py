"""Effective robustness (Taori et al., "Measuring Robustness to Natural Distribution Shifts in Image
Classification", NeurIPS 2020): across the models of one board, out-of-distribution accuracy is fitted as a linear
function of in-distribution (clean) accuracy on logit axes; a model's effective robustness is how far its OOD
accuracy lies above that fit, in accuracy points. Taori et al. fit a baseline of standard models and measure every
model against it; here the baseline is the board's ranked cards (verified, no sanity flag), and each model is
measured against the fit of the baseline *without it* (leave-one-out), so no model pulls the line it is scored
against. Only within a board (the same images, head recipe and settings), and only where at least ``MIN_MODELS``
baseline models other than the scored one remain. No published fit is applied: Taori et al.'s fits are for
ImageNet-trained classifiers on their testbed, not for linear probes of SSL features."""

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


def effective_robustness(clean: list[float], ood: list[float], baseline: list[bool] | None = None
                         ) -> list[float | None] | None:
    """Each model's OOD accuracy minus the prediction, at its clean accuracy, of the fit over the ``baseline``
    models other than itself (fractions in, fractions out; None for a model with fewer than ``MIN_MODELS`` such
    models); None when no model has one. ``baseline`` defaults to every model."""
    baseline = baseline if baseline is not None else [True] * len(clean)
    out: list[float | None] = []
    for i, (c, o) in enumerate(zip(clean, ood, strict=True)):
        others = [j for j, b in enumerate(baseline) if b and j != i]
        if len(others) < MIN_MODELS:
            out.append(None)
            continue
        slope, intercept = linear_fit([clean[j] for j in others], [ood[j] for j in others])
        out.append(o - 1 / (1 + math.exp(-(slope * logit(c) + intercept))))
    return out if any(v is not None for v in out) else None
