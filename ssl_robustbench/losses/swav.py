"""SwAV's swapped prediction with Sinkhorn-Knopp codes (Caron et al., "Unsupervised Learning of Visual Features by
Contrasting Cluster Assignments", NeurIPS 2020, Eqs. 1–3 and Algorithm 1)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


@torch.no_grad()
def sinkhorn(scores: torch.Tensor, *, epsilon: float = 0.05, iterations: int = 3,
             all_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Codes Q [B, K] from prototype scores [B, K]: equipartitioned over the K prototypes, rows summing to 1.
    In distributed training ``all_reduce`` sums over ranks, so the equipartition covers the global batch."""
    total = all_reduce or (lambda t: t)
    q = torch.exp(scores.float() / epsilon).T  # [K, B]
    q /= total(q.sum())
    k = q.shape[0]
    b = int(total(torch.tensor(float(q.shape[1]), device=q.device)))
    for _ in range(iterations):
        q /= total(q.sum(dim=1, keepdim=True))
        q /= k
        q /= q.sum(dim=0, keepdim=True)
        q /= b
    return (q * b).T


def swav_loss(scores: list[torch.Tensor], *, num_global: int = 2, temperature: float = 0.1, epsilon: float = 0.05,
              iterations: int = 3, queued: list[torch.Tensor] | None = None,
              all_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """For each global view's codes q, the cross-entropy −Σ q log softmax(scores_v / τ) over every other view v,
    averaged over the pairs. ``scores``: per view [B, K] (global views first); ``queued``: per global view, scores
    of past batches [Q, K] that join the Sinkhorn problem (SwAV's queue for small batches)."""
    total, pairs = 0.0, 0
    for i in range(num_global):
        own = scores[i].detach()
        extra = queued[i] if queued is not None else own[:0]
        q = sinkhorn(torch.cat([extra, own]), epsilon=epsilon, iterations=iterations,
                     all_reduce=all_reduce)[len(extra):]
        for v, s in enumerate(scores):
            if v == i:
                continue
            total = total + torch.sum(-q * F.log_softmax(s / temperature, dim=1), dim=1).mean()
            pairs += 1
    return total / pairs
