"""Streamed, batched feature extraction into memory (small sets; the probe's cache is ``feature_store``) and k-NN."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ssl_robustbench.progress import track


def extract(
    fn: Callable[[torch.Tensor], torch.Tensor], loader: torch.utils.data.DataLoader, *, device: torch.device,
    description: str = "features",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Runs ``fn`` over every batch of ``loader``: returns features [N, D] (float32, CPU) and labels [N]."""
    feats, labels = [], []
    with torch.inference_mode():
        for x, y in track(loader, total=len(loader), description=description):
            feats.append(fn(x.to(device, non_blocking=True)).float().cpu())
            labels.append(torch.as_tensor(y))
    # concatenated outside inference mode: ordinary tensors, usable by the probe's optimiser
    return torch.cat(feats), torch.cat(labels)


def knn_accuracy(
    train: torch.Tensor, train_y: torch.Tensor, test: torch.Tensor, test_y: torch.Tensor, *, k: int = 20,
    temperature: float = 0.07, num_classes: int | None = None, chunk: int = 1024,
) -> float:
    """Weighted k-NN top-1 on cosine similarity (Wu et al., CVPR 2018; as in DINO's eval_knn). Returns a fraction."""
    num_classes = num_classes or int(train_y.max()) + 1
    train = torch.nn.functional.normalize(train, dim=1)
    test = torch.nn.functional.normalize(test, dim=1)
    correct = 0
    for i in range(0, len(test), chunk):
        sim, idx = (test[i:i + chunk] @ train.T).topk(min(k, len(train)), dim=1)
        votes = torch.zeros(len(sim), num_classes).scatter_add_(1, train_y[idx], (sim / temperature).exp())
        correct += int((votes.argmax(1) == test_y[i:i + chunk]).sum())
    return correct / len(test)
