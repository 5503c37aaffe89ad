"""Redundancy-reduction losses: Barlow Twins (Zbontar et al., ICML 2021, Eq. 1) and VICReg (Bardes et al., ICLR
2022, Eqs. 1–6)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _off_diagonal(m: torch.Tensor) -> torch.Tensor:
    n = m.shape[0]
    return m.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, *, lambd: float = 5e-3) -> torch.Tensor:
    """Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij², C the cross-correlation of the batch-standardized embeddings."""
    n = z1.shape[0]
    z1 = (z1 - z1.mean(0)) / z1.std(0, unbiased=False).clamp_min(1e-6)
    z2 = (z2 - z2.mean(0)) / z2.std(0, unbiased=False).clamp_min(1e-6)
    c = z1.T @ z2 / n
    return (torch.diagonal(c) - 1).pow(2).sum() + lambd * _off_diagonal(c).pow(2).sum()


def vicreg_loss(x: torch.Tensor, y: torch.Tensor, *, sim_weight: float = 25.0, var_weight: float = 25.0,
                cov_weight: float = 1.0) -> torch.Tensor:
    """Invariance (MSE) + variance (hinge on the per-dimension std at 1) + covariance (off-diagonal²)."""
    n, d = x.shape
    invariance = F.mse_loss(x, y)
    x, y = x - x.mean(0), y - y.mean(0)
    std_x, std_y = torch.sqrt(x.var(0) + 1e-4), torch.sqrt(y.var(0) + 1e-4)
    variance = F.relu(1 - std_x).mean() / 2 + F.relu(1 - std_y).mean() / 2
    cov_x, cov_y = x.T @ x / (n - 1), y.T @ y / (n - 1)
    covariance = _off_diagonal(cov_x).pow(2).sum() / d + _off_diagonal(cov_y).pow(2).sum() / d
    return sim_weight * invariance + var_weight * variance + cov_weight * covariance
