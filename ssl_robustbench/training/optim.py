"""Optimizers of the SSL recipes: SGD, AdamW and the two LARS variants in use (You et al. 2017, "Large Batch
Training of Convolutional Networks"):

- ``lars`` — as SimCLR/BYOL use it: trust ratio η‖w‖ / ‖g + λw‖ and weight decay for weights only; biases and
  normalization parameters get plain momentum SGD.
- ``lars-acl`` — the ``optimizer/lars.py`` shared by ACL (Jiang et al. 2020), DynACL (Luo et al. 2023) and ASTrA
  (Chhipa et al. 2025): every parameter (biases and norms included) gets the trust ratio η‖w‖ / (‖g‖ + λ‖w‖) (1
  where either norm is below 1e-15) and weight decay, and the learning rate enters the momentum buffer:
  buf ← m·buf + lr·trust·(g + λw), w ← w − buf.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ssl_robustbench.errors import UserError
from ssl_robustbench.training.config import OPTIMIZERS


class LARS(torch.optim.Optimizer):
    """SGD with momentum whose update of each parameter tensor is scaled by a layer-wise trust ratio. ``variant``
    ``simclr``: η‖w‖ / ‖g + λw‖, groups with ``lars=False`` (biases, norms) get plain momentum SGD without weight
    decay; ``acl``: η‖w‖ / (‖g‖ + λ‖w‖) on every parameter, the learning rate inside the momentum buffer."""

    def __init__(self, params: Iterable, lr: float, *, momentum: float = 0.9, weight_decay: float = 0.0,
                 eta: float = 0.001, variant: str = "simclr") -> None:
        if variant not in ("simclr", "acl"):
            raise ValueError(f"LARS variant must be simclr or acl, not {variant!r}")
        self.variant = variant
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "eta": eta,
                                  "lars": True})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if self.variant == "acl":
                    self._acl_step(p, group)
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

    def _acl_step(self, p: torch.Tensor, group: dict) -> None:
        g, wd = p.grad, group["weight_decay"]
        w_norm, g_norm = torch.norm(p), torch.norm(g)
        trust = torch.where((w_norm < 1e-15) | (g_norm < 1e-15), torch.ones_like(w_norm),
                            group["eta"] * w_norm / (g_norm + wd * w_norm))
        state = self.state[p]
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = torch.zeros_like(p)
        buf.mul_(group["momentum"]).add_(g.add(p, alpha=wd) * (trust * group["lr"]))
        p.sub_(buf)


def param_groups(model: nn.Module) -> list[dict]:
    """Weights (ndim > 1) in one group, biases and normalization parameters in another (no weight decay / LARS;
    ``decay: False`` keeps a weight-decay schedule off it)."""
    weights = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    others = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    return [{"params": weights}, {"params": others, "weight_decay": 0.0, "lars": False, "decay": False}]


def build_optimizer(name: str, model: nn.Module, *, lr: float, momentum: float, weight_decay: float
                    ) -> torch.optim.Optimizer:
    """``sgd`` (momentum, weight decay on all parameters as the SimCLR CIFAR recipe), ``adamw`` (DINO: no decay on
    biases/norms), ``lars`` (SimCLR/BYOL ImageNet) or ``lars-acl`` (ACL/DynACL/ASTrA: every parameter)."""
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
    if name == "lars-acl":
        params = [p for p in model.parameters() if p.requires_grad]
        return LARS(params, lr=lr, momentum=momentum, weight_decay=weight_decay, variant="acl")
    raise UserError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {name!r}")
