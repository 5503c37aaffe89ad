"""Optimizers of the SSL recipes: SGD, AdamW and LARS (You et al. 2017, as SimCLR/BYOL use it: trust ratio and
weight decay only for weights, not for biases and normalization parameters)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ssl_robustbench.errors import UserError


class LARS(torch.optim.Optimizer):
    """SGD with momentum whose update of each weight matrix is scaled by η‖w‖ / ‖g + λw‖ (layer-wise adaptive
    rate). Parameter groups with ``lars=False`` (biases, norms) get plain momentum SGD without weight decay."""

    def __init__(self, params: Iterable, lr: float, *, momentum: float = 0.9, weight_decay: float = 0.0,
                 eta: float = 0.001) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "eta": eta,
                                  "lars": True})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if group["lars"]:
                    g = g.add(p, alpha=group["weight_decay"])
                    w_norm, g_norm = torch.norm(p), torch.norm(g)
                    trust = torch.where((w_norm > 0) & (g_norm > 0), group["eta"] * w_norm / g_norm,
                                        torch.ones_like(w_norm))
                    g = g * trust
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = torch.clone(g).detach()
                else:
                    buf.mul_(group["momentum"]).add_(g)
                p.add_(buf, alpha=-group["lr"])


def param_groups(model: nn.Module) -> list[dict]:
    """Weights (ndim > 1) in one group, biases and normalization parameters in another (no weight decay / LARS)."""
    weights = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    others = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    return [{"params": weights}, {"params": others, "weight_decay": 0.0, "lars": False}]


def build_optimizer(name: str, model: nn.Module, *, lr: float, momentum: float, weight_decay: float
                    ) -> torch.optim.Optimizer:
    """``sgd`` (momentum, weight decay on all parameters as the SimCLR CIFAR recipe), ``adamw`` (DINO: no decay on
    biases/norms) or ``lars`` (SimCLR/BYOL ImageNet)."""
    if name == "sgd":
        params = [p for p in model.parameters() if p.requires_grad]
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adamw":
        groups = param_groups(model)
        for g in groups:
            g.pop("lars", None)
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    if name == "lars":
        return LARS(param_groups(model), lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise UserError(f"optimizer must be sgd, adamw or lars, not {name!r}")
