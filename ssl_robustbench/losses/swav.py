"""SwAV's swapped prediction with Sinkhorn-Knopp codes (Caron et al., "Unsupervised Learning of Visual Features by
Contrasting Cluster Assignments", NeurIPS 2020, Eqs. 1–3 and Algorithm 1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def sinkhorn(scores: torch.Tensor, *, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """Codes Q [B, K] from prototype scores [B, K]: equipartitioned over the K prototypes, rows summing to 1
    (the caller all-reduces the sums across ranks in distributed training)."""
    q = torch.exp(scores.float() / epsilon).T  # [K, B]
    q /= q.sum()
    k, b = q.shape
    for _ in range(iterations):
        q /= q.sum(dim=1, keepdim=True)
        q /= k
        q /= q.sum(dim=0, keepdim=True)
        q /= b
    return (q * b).T


def swav_loss(scores: list[torch.Tensor], *, num_global: int = 2, temperature: float = 0.1, epsilon: float = 0.05,
              iterations: int = 3) -> torch.Tensor:
    """For each global view's codes q, the cross-entropy −Σ q log softmax(scores_v / τ) over every other view v,
    averaged over the pairs. ``scores``: per view [B, K] (global views first)."""
    total, pairs = 0.0, 0
    for i in range(num_global):
        q = sinkhorn(scores[i].detach(), epsilon=epsilon, iterations=iterations)
        for v, s in enumerate(scores):
            if v == i:
                continue
            total = total + torch.sum(-q * F.log_softmax(s / temperature, dim=1), dim=1).mean()
            pairs += 1
    return total / pairs
