"""The multi-view contrastive loss of SupCon's code without labels (Khosla et al., "Supervised Contrastive
Learning", NeurIPS 2020, ``losses.py``; AdvCL trains on it with four views)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def multiview_contrastive(views: list[torch.Tensor], *, temperature: float = 0.5,
                          base_temperature: float = 0.07) -> torch.Tensor:
    """Every row of every view is an anchor; its positives are the same row in the other views, its negatives
    all other rows; −(τ / τ_base) · mean log-probability of the positives, averaged over anchors. Embeddings are
    L2-normalized here. ``base_temperature`` 0.07 is SupConLoss's default, which AdvCL keeps (a 0.5 / 0.07 scale)."""
    z = F.normalize(torch.cat(views), dim=1)
    n, k = len(views[0]), len(views)
    logits = z @ z.T / temperature
    logits = logits - logits.max(dim=1, keepdim=True).values.detach()
    self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)
    log_prob = logits - torch.logsumexp(logits.masked_fill(self_mask, float("-inf")), dim=1, keepdim=True)
    idx = torch.arange(len(z), device=z.device) % n
    positive = (idx[:, None] == idx[None, :]) & ~self_mask
    mean_pos = (log_prob * positive).sum(1) / (k - 1)
    return -(temperature / base_temperature) * mean_pos.mean()
