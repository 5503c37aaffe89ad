"""Dual BatchNorm for adversarial SSL (ACL: Jiang et al., "Robust Pre-Training by Adversarial Contrastive Learning",
NeurIPS 2020): every BatchNorm (2d in the encoder, 1d in the projector) gets two branches, ``normal`` for clean
images and ``pgd`` for adversarial ones, stored as ``<bn>.bn_list.0.*`` / ``<bn>.bn_list.1.*`` as in the released
ACL/DynACL/ASTrA checkpoints (which the zoo loads with a card's ``bn_branch``). AdvCL adds a third, ``pgd_ce``
(``bn_list.2``), for its pseudo-label attack; a card's ``pgd`` branch stays ``bn_list.1``."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Mapping

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

BRANCHES = ("normal", "pgd")  # ACL's two; the index of a name is its ``bn_list`` position


class DualBatchNorm(nn.Module):
    """BatchNorms of the same kind and shape, one per name of ``branches``; ``branch`` picks the one in use."""

    def __init__(self, bn: _BatchNorm, branches: tuple[str, ...] = BRANCHES) -> None:
        super().__init__()
        self.branches = tuple(branches)
        self.bn_list = nn.ModuleList([bn] + [copy.deepcopy(bn) for _ in self.branches[1:]])
        self.branch = "normal"

    def index(self, branch: str) -> int:
        return self.branches.index(branch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn_list[self.index(self.branch)](x)


def convert_dual_bn(module: nn.Module, branches: tuple[str, ...] = BRANCHES) -> nn.Module:
    """Replaces every BatchNorm1d/2d inside ``module`` by a DualBatchNorm whose branches (ACL's two by default)
    start equal (in place; returns ``module``)."""
    for name, child in module.named_children():
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)) and not isinstance(child, nn.SyncBatchNorm):
            setattr(module, name, DualBatchNorm(child, branches))
        else:
            convert_dual_bn(child, branches)
    return module


def collapse_dual_bn(module: nn.Module, branch: str) -> nn.Module:
    """The inverse of ``convert_dual_bn``: each DualBatchNorm becomes its ``branch`` BatchNorm (in place)."""
    for name, child in module.named_children():
        if isinstance(child, DualBatchNorm):
            setattr(module, name, child.bn_list[child.index(branch)])
        else:
            collapse_dual_bn(child, branch)
    return module


def has_dual_bn(module: nn.Module) -> bool:
    return any(isinstance(m, DualBatchNorm) for m in module.modules())


def load_branch(module: nn.Module, branch: str, state: Mapping[str, torch.Tensor]) -> None:
    """Loads one branch of every DualBatchNorm of ``module`` from ``state``, a plain (single-BN) state dict of the
    same module — the BatchNorm entries of the other branch of a dual-BN checkpoint (``LoadedModel.dual_bn``)."""
    for name, m in module.named_modules():
        if isinstance(m, DualBatchNorm):
            bn = m.bn_list[m.index(branch)]
            prefix = f"{name}." if name else ""
            bn.load_state_dict({k: state[prefix + k] for k in bn.state_dict()})


@contextlib.contextmanager
def bn_branch(module: nn.Module, branch: str) -> Iterator[None]:
    """Runs ``module`` through one BatchNorm branch inside the block, restoring the previous ones after."""
    duals = [m for m in module.modules() if isinstance(m, DualBatchNorm)]
    before = [m.branch for m in duals]
    for m in duals:
        m.branch = branch
    try:
        yield
    finally:
        for m, b in zip(duals, before, strict=True):
            m.branch = b
