"""Dual BatchNorm for adversarial SSL (ACL: Jiang et al., "Robust Pre-Training by Adversarial Contrastive Learning",
NeurIPS 2020): every BatchNorm2d of a backbone gets two branches, ``normal`` for clean images and ``pgd`` for
adversarial ones, stored as ``<bn>.bn_list.0.*`` / ``<bn>.bn_list.1.*`` as in the released ACL/DynACL/ASTrA
checkpoints (which the zoo loads with a card's ``bn_branch``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

BRANCHES = {"normal": 0, "pgd": 1}


class DualBatchNorm2d(nn.Module):
    """Two BatchNorm2d of the same shape; ``branch`` picks the one in use."""

    def __init__(self, bn: nn.BatchNorm2d) -> None:
        super().__init__()
        self.bn_list = nn.ModuleList([bn, _copy_bn(bn)])
        self.branch = "normal"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn_list[BRANCHES[self.branch]](x)


def _copy_bn(bn: nn.BatchNorm2d) -> nn.BatchNorm2d:
    out = nn.BatchNorm2d(bn.num_features, eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
                         track_running_stats=bn.track_running_stats)
    out.load_state_dict(bn.state_dict())
    return out


def convert_dual_bn(module: nn.Module) -> nn.Module:
    """Replaces every BatchNorm2d inside ``module`` by a DualBatchNorm2d (in place; returns ``module``)."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, DualBatchNorm2d(child))
        else:
            convert_dual_bn(child)
    return module


@contextlib.contextmanager
def bn_branch(module: nn.Module, branch: str) -> Iterator[None]:
    """Runs ``module`` through one BatchNorm branch inside the block, restoring the previous ones after."""
    duals = [m for m in module.modules() if isinstance(m, DualBatchNorm2d)]
    before = [m.branch for m in duals]
    for m in duals:
        m.branch = branch
    try:
        yield
    finally:
        for m, b in zip(duals, before, strict=True):
            m.branch = b
