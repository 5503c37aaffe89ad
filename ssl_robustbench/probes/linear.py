"""The linear probe: multinomial logistic regression on frozen, standardized features.

Two solvers on the same chunked feature source (``feature_store``), so memory does not grow with N:

- ``lbfgs``: full-batch L-BFGS (as in CLIP's linear-probe protocol, Radford et al. 2021); loss and gradient are
  summed chunk by chunk, so the result equals the in-memory fit at any scale. Deterministic, no LR schedule.
- ``sgd``: minibatch SGD with momentum and a cosine LR over ``epochs`` (the linear-eval recipe family of MoCo,
  SimSiam, DINO — here on cached features, without their crop/flip augmentation), chunks in random order.

Standardization (streamed mean/std) is folded into the saved ``nn.Linear`` so the classifier sees raw features.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save
from torch import nn

from ssl_robustbench.config import ProbeConfig
from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import atomic_write_bytes
from ssl_robustbench.probes.feature_store import ChunkedFeatures, TensorFeatures


@dataclasses.dataclass(frozen=True)
class FittedProbe:
    """A fitted head (standardization folded in) and its record."""

    head: nn.Linear
    record: dict


def loss_and_grads(
    z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor, *, weight_decay: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean cross-entropy + ``weight_decay``/2·‖w‖² and its analytic gradients (two matmuls, no autograd graph).

    Args:
        z: [N, D] standardized features.
        y: [N] int64 labels.
        w: [C, D] weights.
        b: [C] biases.
    """
    ce, gw, gb = _ce_sums(z, y, w, b)
    n = len(z)
    return ce / n + 0.5 * weight_decay * (w * w).sum(), gw / n + weight_decay * w, gb / n


def _ce_sums(z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Summed cross-entropy over the rows of ``z`` and its summed gradients w.r.t. ``w`` and ``b``: softmax minus
    the one-hot label, without building a one-hot matrix; logits are kept class-major ([C, N]: the softmax runs
    along contiguous rows, ~20 % faster per pass for few classes)."""
    log_p = torch.log_softmax(torch.addmm(b[:, None], w, z.T), dim=0)
    cols = torch.arange(len(y), device=y.device)
    ce = -log_p[y, cols].sum()
    delta = log_p.exp_()
    delta[y, cols] -= 1
    return ce, delta @ z, delta.sum(1)


def feature_stats(source: ChunkedFeatures, *, standardize: bool, device: torch.device | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per-feature mean and std (float64 sums over chunks; std clamped at 1e-6) and the largest label."""
    total = torch.zeros(source.d, dtype=torch.float64, device=device)
    squares = torch.zeros(source.d, dtype=torch.float64, device=device)
    top = -1
    for x, y in source.chunks():
        x = x.to(device)
        total += x.sum(0, dtype=torch.float64)  # float64 accumulators, no float64 copy of the chunk
        squares += (x * x).sum(0, dtype=torch.float64)
        top = max(top, int(y.max())) if len(y) else top
    if not standardize:
        return torch.zeros(source.d, device=device), torch.ones(source.d, device=device), top
    mean = total / source.n
    var = (squares - source.n * mean * mean) / max(1, source.n - 1)
    return mean.float(), var.clamp_min(0).sqrt().clamp_min(1e-6).float(), top


def fit_linear_probe(
    features: torch.Tensor | ChunkedFeatures, labels: torch.Tensor | None = None, *, num_classes: int,
    cfg: ProbeConfig, seed: int = 0, device: torch.device | str | None = None,
) -> FittedProbe:
    """Fits ``num_classes``-way logistic regression on features [N, D] (a tensor with ``labels``, or a chunked
    source such as a ``FeatureStore``) with ``cfg``'s solver and L2 penalty ``cfg.weight_decay``, on ``device``
    (chunks are moved there; default CPU). The result does not depend on the chunk size beyond float rounding.

    Returns:
        The head as ``nn.Linear(D, num_classes)`` and a record of the recipe, iterations and train accuracy.
    """
    source = features if isinstance(features, ChunkedFeatures) else TensorFeatures(features, labels)
    if source.n == 0:
        raise UserError("the linear probe has no training features")
    device = torch.device(device or "cpu")
    mu, sigma, top = feature_stats(source, standardize=cfg.standardize, device=device)
    if top >= num_classes:
        raise UserError(f"labels go up to {top} but the probe has {num_classes} classes")
    g = torch.Generator().manual_seed(seed)
    w = (torch.randn(num_classes, source.d, generator=g) * 0.01).to(device)
    b = torch.zeros(num_classes, device=device)
    solve = _lbfgs if cfg.solver == "lbfgs" else _sgd
    on_device = _OnDevice(source, device)
    w, b, info = solve(on_device, mu, sigma, w, b, num_classes=num_classes, cfg=cfg, g=g)
    with torch.no_grad():
        weight = w / sigma
        bias = b - weight @ mu
        correct = sum(int(((x @ weight.T + bias).argmax(1) == y).sum()) for x, y in on_device.chunks())
        head = nn.Linear(source.d, num_classes)
        head.weight.copy_(weight.cpu())
        head.bias.copy_(bias.cpu())
    record = {"recipe": cfg.recipe(), "solver": f"{cfg.solver}-chunked", "num_classes": num_classes,
              "num_features": source.d, "n_train": source.n, "train_top1": correct / source.n, **info}
    return FittedProbe(head=head, record=record)


class _OnDevice(ChunkedFeatures):
    """``source``'s chunks moved to ``device``."""

    def __init__(self, source: ChunkedFeatures, device: torch.device) -> None:
        self.source, self.device, self.n, self.d = source, device, source.n, source.d

    def rows_per_chunk(self, chunk_bytes: int = 0) -> int:
        return self.source.rows_per_chunk()

    def read(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.source.read(start, stop)
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


def _lbfgs(source: ChunkedFeatures, mu: torch.Tensor, sigma: torch.Tensor, w: torch.Tensor, b: torch.Tensor, *,
           num_classes: int, cfg: ProbeConfig, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Full-batch L-BFGS (strong-Wolfe line search, history 20) with the loss summed over chunks."""
    w, b = w.requires_grad_(), b.requires_grad_()
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=cfg.max_iter, tolerance_grad=cfg.tolerance,
                            tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")
    passes = []
    # a source of one chunk is standardized once and kept: the memory of the one chunk that streaming holds too
    kept = [((x - mu) / sigma, y) for x, y in source.chunks()] if source.num_chunks() == 1 else None

    @torch.no_grad()
    def closure() -> torch.Tensor:
        ce, gw, gb = torch.zeros((), device=w.device), torch.zeros_like(w), torch.zeros_like(b)
        for z, y in kept or (((x - mu) / sigma, y) for x, y in source.chunks()):
            c, cw, cb = _ce_sums(z, y, w, b)
            ce, gw, gb = ce + c, gw + cw, gb + cb
        passes.append(1)
        w.grad, b.grad = gw / source.n + cfg.weight_decay * w, gb / source.n
        return ce / source.n + 0.5 * cfg.weight_decay * (w * w).sum()

    opt.step(closure)
    loss = float(closure())
    iterations = opt.state[opt._params[0]].get("n_iter", 0)
    return w.detach(), b.detach(), {"iterations": int(iterations), "data_passes": len(passes), "final_loss": loss}


def _sgd(source: ChunkedFeatures, mu: torch.Tensor, sigma: torch.Tensor, w: torch.Tensor, b: torch.Tensor, *,
         num_classes: int, cfg: ProbeConfig, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Minibatch SGD (momentum, L2 weight decay, cosine LR per step to 0); chunks and rows shuffled per epoch."""
    head = nn.Linear(source.d, num_classes).to(w.device)
    with torch.no_grad():
        head.weight.copy_(w)
        head.bias.copy_(b)
    opt = torch.optim.SGD([{"params": [head.weight], "weight_decay": cfg.weight_decay},  # the bias is not decayed,
                           {"params": [head.bias], "weight_decay": 0.0}],  # as in the L-BFGS objective
                          lr=cfg.lr, momentum=cfg.momentum)
    rows = source.rows_per_chunk()
    steps_per_epoch = sum(-(-min(rows, source.n - start) // cfg.batch_size) for start in range(0, source.n, rows))
    total, step, epoch_losses = cfg.epochs * steps_per_epoch, 0, []
    for _ in range(cfg.epochs):
        running, seen = 0.0, 0
        for x, y in source.chunks(order=torch.randperm(source.num_chunks(), generator=g)):
            z = (x - mu) / sigma
            order = torch.randperm(len(z), generator=g).to(z.device)
            for i in range(0, len(z), cfg.batch_size):
                idx = order[i:i + cfg.batch_size]
                for group in opt.param_groups:
                    group["lr"] = 0.5 * cfg.lr * (1 + math.cos(math.pi * step / total))
                loss = F.cross_entropy(head(z[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                running, seen, step = running + float(loss.detach()) * len(idx), seen + len(idx), step + 1
        epoch_losses.append(running / max(1, seen))
    return head.weight.detach().clone(), head.bias.detach().clone(), {"steps": step, "epoch_losses": epoch_losses,
                                                                      "final_loss": epoch_losses[-1]}


def save_probe(path: Path, probe: FittedProbe) -> None:
    """Writes the head as safetensors with its record in the metadata (atomically)."""
    tensors = {"weight": probe.head.weight.detach().contiguous(), "bias": probe.head.bias.detach().contiguous()}
    atomic_write_bytes(path, save(tensors, metadata={"record": json.dumps(probe.record, sort_keys=True)}))


def load_probe_record(path: Path) -> dict:
    """The record stored in a saved probe's metadata (recipe, iterations, train top-1, probe id)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return json.loads((fh.metadata() or {}).get("record", "{}"))
    except (ValueError, OSError, SafetensorError) as err:
        raise UserError(f"cannot read probe {path}: {err}") from None


def load_probe(path: Path, *, num_features: int, num_classes: int) -> FittedProbe:
    """Reads a saved probe; a feature or class count that does not fit the model and data is a UserError."""
    from safetensors import SafetensorError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"probe file not found: {path}")
    record = load_probe_record(path)
    try:
        tensors = load_file(str(path))
        weight, bias = tensors["weight"], tensors["bias"]
    except (KeyError, ValueError, OSError, SafetensorError) as err:
        raise UserError(f"cannot read probe {path}: {err}") from None
    if weight.ndim != 2 or weight.shape[1] != num_features:
        raise UserError(f"probe {path} expects {weight.shape[-1]} features but the backbone gives {num_features}")
    if weight.shape[0] != num_classes:
        raise UserError(f"probe {path} has {weight.shape[0]} classes but the dataset has {num_classes}")
    head = nn.Linear(num_features, num_classes)
    with torch.no_grad():
        head.weight.copy_(weight)
        head.bias.copy_(bias)
    return FittedProbe(head=head, record=record)
