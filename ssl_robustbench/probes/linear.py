"""The linear probe: multinomial logistic regression on frozen, standardized features, fitted by L-BFGS.

Full-batch L-BFGS on cached features (as in CLIP's linear-probe protocol, Radford et al. 2021) is deterministic
and needs no learning-rate schedule. Standardization is folded into the saved ``nn.Linear`` so the classifier
sees raw backbone features.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save
from torch import nn

from ssl_robustbench.config import ProbeConfig
from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import atomic_write_bytes


@dataclasses.dataclass(frozen=True)
class FittedProbe:
    """A fitted head (standardization folded in) and its record."""

    head: nn.Linear
    record: dict


def loss_and_grads(
    z: torch.Tensor, onehot: torch.Tensor, w: torch.Tensor, b: torch.Tensor, *, weight_decay: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean cross-entropy + ``weight_decay``/2·‖w‖² and its analytic gradients (two matmuls, no autograd graph).

    Args:
        z: [N, D] standardized features.
        onehot: [N, C] one-hot labels.
        w: [C, D] weights.
        b: [C] biases.
    """
    logits = z @ w.T + b
    lse = torch.logsumexp(logits, dim=1)
    loss = (lse - (logits * onehot).sum(1)).mean() + 0.5 * weight_decay * (w * w).sum()
    delta = (torch.exp(logits - lse[:, None]) - onehot) / len(z)
    return loss, delta.T @ z + weight_decay * w, delta.sum(0)


def fit_linear_probe(
    features: torch.Tensor, labels: torch.Tensor, *, num_classes: int, cfg: ProbeConfig, seed: int = 0
) -> FittedProbe:
    """Fits ``num_classes``-way logistic regression on ``features`` [N, D] with L2 penalty ``cfg.weight_decay``.

    Returns:
        The head as ``nn.Linear(D, num_classes)`` and a record of the recipe, iterations and train accuracy.
    """
    if labels.numel() and int(labels.max()) >= num_classes:
        raise UserError(f"labels go up to {int(labels.max())} but the probe has {num_classes} classes")
    x = features.float()
    mu = x.mean(0) if cfg.standardize else torch.zeros(x.shape[1], dtype=x.dtype)
    sigma = x.std(0).clamp_min(1e-6) if cfg.standardize else torch.ones(x.shape[1], dtype=x.dtype)
    z = (x - mu) / sigma
    g = torch.Generator().manual_seed(seed)
    w = (torch.randn(num_classes, x.shape[1], generator=g, dtype=x.dtype) * 0.01).requires_grad_()
    b = torch.zeros(num_classes, dtype=x.dtype, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=cfg.max_iter, tolerance_grad=cfg.tolerance,
                            tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")
    onehot = F.one_hot(labels, num_classes).to(x.dtype)

    @torch.no_grad()
    def closure() -> torch.Tensor:
        loss, w.grad, b.grad = loss_and_grads(z, onehot, w, b, weight_decay=cfg.weight_decay)
        return loss

    opt.step(closure)
    with torch.no_grad():
        loss = F.cross_entropy(z @ w.T + b, labels) + 0.5 * cfg.weight_decay * (w * w).sum()
        head = nn.Linear(x.shape[1], num_classes)
        weight = w / sigma
        head.weight.copy_(weight)
        head.bias.copy_(b - weight @ mu)
        train_acc = float(((features @ head.weight.T + head.bias).argmax(1) == labels).float().mean())
    iterations = opt.state[opt._params[0]].get("n_iter", 0)
    record = {"recipe": dataclasses.asdict(cfg), "solver": "lbfgs-full-batch", "num_classes": num_classes,
              "num_features": x.shape[1], "n_train": len(labels), "final_loss": float(loss),
              "iterations": int(iterations), "train_top1": train_acc}
    return FittedProbe(head=head, record=record)


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
