"""NT-Xent, the normalized temperature-scaled cross-entropy of SimCLR (Chen et al., ICML 2020, Eq. 1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, *, temperature: float = 0.5) -> torch.Tensor:
    """Mean NT-Xent over the 2B anchors of a batch of positive pairs.

    Args:
        z1: [B, D] embeddings of the first views.
        z2: [B, D] embeddings of the second views (row i is the positive of ``z1[i]``).
        temperature: τ.

    Returns:
        Scalar loss; each anchor's negatives are the other 2B−2 embeddings.
    """
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(b, 2 * b), torch.arange(b)]).to(z.device)
    return F.cross_entropy(logits, targets)
