"""Weighted k-NN evaluation of frozen features (Wu et al., 2018; the protocol of DINO's ``eval_knn.py``, Caron et
al., ICCV 2021): features L2-normalized, cosine similarity to every training feature, the ``k`` most similar vote
for their labels with weight exp(s / T); the class with the largest vote wins (DINO: k = 20, T = 0.07).

The training features come from the same on-disk feature store the linear probe is fitted on and are read in
chunks, queries a batch at a time, so memory is bounded by one chunk × one batch of similarities whatever the
training set's size; the top-k is merged across chunks, which gives exactly the all-in-memory result. Small stores
(≤ ``RESIDENT_BYTES`` of float32) are held on the device once instead of re-read for every batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssl_robustbench.probes.feature_store import ChunkedFeatures

RESIDENT_BYTES = 1 << 30


def knn_votes(queries: torch.Tensor, chunks, *, k: int, temperature: float, num_classes: int) -> torch.Tensor:
    """The class votes [B, C] of ``queries`` [B, D] (L2-normalized here) against the training ``chunks`` (an
    iterable of (features [R, D], labels [R]); features L2-normalized here): the ``k`` most similar rows over all
    chunks, each voting exp(similarity / temperature) for its label."""
    q = F.normalize(queries.float(), dim=1)
    best_sim = q.new_full((len(q), 0), float("-inf"))
    best_lab = torch.empty((len(q), 0), dtype=torch.long, device=q.device)
    for feats, labels in chunks:
        feats = F.normalize(feats.to(q.device, q.dtype), dim=1)
        sim = q @ feats.T
        take = min(k, sim.shape[1])
        s, i = sim.topk(take, dim=1)
        merged_sim = torch.cat([best_sim, s], dim=1)
        merged_lab = torch.cat([best_lab, labels.to(q.device)[i]], dim=1)
        keep = min(k, merged_sim.shape[1])
        best_sim, j = merged_sim.topk(keep, dim=1)
        best_lab = merged_lab.gather(1, j)
    weights = (best_sim / temperature).exp()
    return torch.zeros(len(q), num_classes, device=q.device, dtype=q.dtype).scatter_add_(1, best_lab, weights)


class KNNHead(nn.Module):
    """A head scoring features by their weighted k-NN votes over a training feature store (``knn_votes``); its
    output is the vote per class (argmax = the prediction), differentiable in the query features for attacks."""

    def __init__(self, source: ChunkedFeatures, *, num_classes: int, k: int = 20, temperature: float = 0.07,
                 chunk_rows: int = 8192) -> None:
        super().__init__()
        self.source, self.num_classes, self.k, self.temperature = source, num_classes, k, temperature
        self.chunk_rows = chunk_rows
        self._resident: tuple[torch.Tensor, torch.Tensor] | None = None

    def _chunks(self, device: torch.device):
        if self.source.n * self.source.d * 4 <= RESIDENT_BYTES:
            if self._resident is None or self._resident[0].device != device:
                feats, labels = self.source.load()
                self._resident = (F.normalize(feats.to(device), dim=1), labels.to(device))
            feats, labels = self._resident
            return ((feats[i:i + self.chunk_rows], labels[i:i + self.chunk_rows])
                    for i in range(0, len(feats), self.chunk_rows))
        return self.source.chunks(self.chunk_rows)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return knn_votes(features, self._chunks(features.device), k=self.k, temperature=self.temperature,
                         num_classes=self.num_classes)
