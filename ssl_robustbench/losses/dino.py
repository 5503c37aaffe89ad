"""DINO's self-distillation loss with centering (Caron et al., "Emerging Properties in Self-Supervised Vision
Transformers", ICCV 2021, Eq. 3 and Algorithm 1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dino_loss(student: list[torch.Tensor], teacher: list[torch.Tensor], center: torch.Tensor, *,
              student_temp: float = 0.1, teacher_temp: float = 0.04) -> torch.Tensor:
    """Cross-entropy between the centred, sharpened teacher distribution of each global view and the student's
    distribution of every *other* view, averaged over the pairs.

    Args:
        student: per view [B, K] logits (global views first, then local ones).
        teacher: per global view [B, K] logits (no gradient).
        center: [K] running mean of the teacher logits.
    """
    total, pairs = 0.0, 0
    for iq, t in enumerate(teacher):
        q = F.softmax((t.detach() - center) / teacher_temp, dim=-1)
        for v, s in enumerate(student):
            if v == iq:
                continue
            total = total + torch.sum(-q * F.log_softmax(s / student_temp, dim=-1), dim=-1).mean()
            pairs += 1
    return total / pairs


@torch.no_grad()
def updated_center(center: torch.Tensor, teacher: list[torch.Tensor], *, momentum: float = 0.9) -> torch.Tensor:
    """EMA of the teacher's batch-mean logits (the caller all-reduces the batch mean across ranks)."""
    batch_center = torch.cat(teacher).mean(0)
    return center * momentum + batch_center * (1 - momentum)
