"""k-means for pseudo labels (AdvCL's ClusterFit labels, Fan et al., NeurIPS 2021): k-means++ seeding (Arthur &
Vassilvitskii, SODA 2007) then Lloyd iterations, on the device of the features, seeded."""

from __future__ import annotations

import torch

from ssl_robustbench.errors import UserError


def kmeans(x: torch.Tensor, k: int, *, iters: int = 50, seed: int = 0) -> torch.Tensor:
    """Centroids [k, D] of the rows of ``x`` [N, D]; an empty cluster is re-seeded at the point farthest from its
    centroid, so every centroid owns at least one point."""
    if x.dim() != 2 or not torch.isfinite(x).all():
        raise UserError("k-means needs a finite [N, D] feature matrix")
    if not 1 <= k <= len(x):
        raise UserError(f"k-means with {k} clusters needs at least {k} points, got {len(x)}")
    g = torch.Generator(device=x.device).manual_seed(seed)
    x = x.float()
    centroids = x[torch.randint(len(x), (1,), generator=g, device=x.device)]
    nearest = torch.cdist(x, centroids).squeeze(1) ** 2
    for _ in range(1, k):  # k-means++: the next centroid drawn ∝ squared distance to the nearest chosen one
        weights = nearest if nearest.sum() > 0 else torch.ones_like(nearest)
        pick = torch.multinomial(weights, 1, generator=g)
        centroids = torch.cat([centroids, x[pick]])
        nearest = torch.minimum(nearest, (torch.cdist(x, x[pick]).squeeze(1)) ** 2)
    for _ in range(iters):
        dist = torch.cdist(x, centroids)
        labels = dist.argmin(1)
        counts = torch.bincount(labels, minlength=k)
        sums = torch.zeros_like(centroids).index_add_(0, labels, x)
        new = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None].to(x), centroids)
        for empty in (counts == 0).nonzero()[:, 0].tolist():
            far = dist.gather(1, labels[:, None]).squeeze(1).argmax()
            new[empty], labels[far] = x[far], empty
            dist[far] = 0
        if torch.equal(new, centroids):
            break
        centroids = new
    return centroids


def assign(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """The index of each row's nearest centroid."""
    return torch.cdist(x.float(), centroids).argmin(1)
