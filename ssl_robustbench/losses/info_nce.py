"""InfoNCE against a queue of negatives, MoCo's loss (He et al., "Momentum Contrast for Unsupervised Visual
Representation Learning", CVPR 2020, Eq. 1; MoCo v2: Chen et al. 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, *, temperature: float = 0.2) -> torch.Tensor:
    """Mean InfoNCE of queries ``q`` [B, D] with positive keys ``k`` [B, D] (no gradient) and negatives ``queue``
    [K, D]; all three are L2-normalized here."""
    q, k, queue = F.normalize(q, dim=1), F.normalize(k.detach(), dim=1), F.normalize(queue.detach(), dim=1)
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue.T], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))
