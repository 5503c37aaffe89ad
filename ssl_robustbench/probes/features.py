"""Streamed, batched feature extraction, cached on disk by (model, data, preprocessing) hash, and k-NN accuracy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from ssl_robustbench.fileio import atomic_write_bytes
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


def cached_extract(
    fn: Callable[[torch.Tensor], torch.Tensor], dataset: torch.utils.data.Dataset,
    loader: Callable[[torch.utils.data.Dataset], torch.utils.data.DataLoader], *, device: torch.device,
    cache_file: Path, description: str = "features",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``extract`` with a safetensors cache at ``cache_file`` (the caller puts the content hash in its name).
    Under torchrun each rank extracts its shard and every rank gets all features in dataset order; rank 0 writes
    the cache."""
    from ssl_robustbench.training import distributed as ddp

    if cache_file.is_file():
        data = load_file(str(cache_file))
        return data["features"], data["labels"]
    feats, labels = extract(fn, loader(ddp.shard(dataset)), device=device, description=description)
    feats, labels = ddp.gather_shards(feats, len(dataset)), ddp.gather_shards(labels, len(dataset))
    if ddp.rank() == 0:
        atomic_write_bytes(cache_file, save({"features": feats.contiguous(), "labels": labels.contiguous()}))
    ddp.barrier()
    return feats, labels


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
