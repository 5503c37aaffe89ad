"""Negative-cosine losses of the non-contrastive methods: SimSiam (Chen & He, CVPR 2021, Eq. 1) and BYOL
(Grill et al., NeurIPS 2020, Eq. 2). The target is a stop-gradient in both."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """SimSiam's D(p, z) = −cos(p, stopgrad(z)), averaged over the batch."""
    return -F.cosine_similarity(p, z.detach(), dim=1).mean()


def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """BYOL's ‖p̄ − z̄‖² = 2 − 2·cos(p, stopgrad(z)), averaged over the batch."""
    return (2 - 2 * F.cosine_similarity(p, z.detach(), dim=1)).mean()
