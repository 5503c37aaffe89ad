"""The methods registry, the shared method base (views, momentum targets) and the projector MLP.

A method is an ``nn.Module`` built as ``cls(backbone, cfg)`` whose ``forward(views) -> {"loss": ...}`` takes the
normalized views (global views first). The training loop sets ``progress`` (fraction of training done) before each
step and ``epoch`` / ``epochs`` before each epoch, and after the optimizer step updates every (online, target) pair
of ``ema_pairs()`` with the momentum ``momentum_at(progress)`` — momentum/EMA is handled once, in the loop, not per
method.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ssl_robustbench.registry import Registry
from ssl_robustbench.transforms.views import ViewSpec

METHODS: Registry[type[nn.Module]] = Registry("method")

TWO_GLOBAL = (ViewSpec("global", 2),)


def multi_crop(global_scale: tuple[float, float], local_scale: tuple[float, float], *, local: int = 4,
               local_fraction: float = 0.4) -> tuple[ViewSpec, ...]:
    """Two global crops and ``local`` small crops (side ``local_fraction`` of the view size, set by the loop)."""
    return (ViewSpec("global", 2, scale=global_scale),
            ViewSpec("local", local, size_fraction=local_fraction, scale=local_scale))


class Method(nn.Module):
    """Base of every method: the backbone and config, default views, momentum targets and their schedule, and the
    loop's optional per-epoch hooks (annealed views, extra log columns, plots)."""

    Config: type
    paper: str = ""  # the paper the method comes from (``pretrain --list``)
    default_views: tuple[ViewSpec, ...] = TWO_GLOBAL
    #: whether the EMA copies BatchNorm statistics to the target (BYOL/DINO) or the target keeps its own (DynACL)
    ema_buffers: bool = True
    #: attributes holding frozen pretrained networks that stay in eval mode throughout (DeACL's teacher)
    frozen_networks: tuple[str, ...] = ()

    def __init__(self, backbone: nn.Module, cfg: Any) -> None:
        super().__init__()
        self.backbone, self.cfg = backbone, cfg
        self.progress = 0.0
        self.warmup = 0.0  # fraction of training spent in LR warmup (set by the loop)
        self.epoch, self.epochs = 0, 1  # the current epoch (from 0) and the run's epochs (set by the loop)

    def train(self, mode: bool = True) -> Method:
        super().train(mode)
        for name in self.frozen_networks:
            getattr(self, name).eval()
        return self

    @property
    def card_method(self) -> str | None:
        """The zoo-card method name when it is not the registry name (e.g. ``astra`` for ACL + ASTrA)."""
        return None

    def prepare(self, train_ds: Any, cfg: Any, device: torch.device) -> None:
        """Called once before training (and on resume) with the training set and the ``PretrainConfig`` (AdvCL:
        its pseudo-label clusters); nothing by default."""

    def post_train(self, train_ds: Any, cfg: Any, device: torch.device) -> None:
        """Called once after the last epoch, before the export (DynACL++: its pseudo-label finetuning)."""

    def views_at(self, epoch: int, epochs: int, size: int) -> list[ViewSpec] | None:
        """The views of ``epoch`` (from 0) of ``epochs`` when they change over training (e.g. DynACL's annealed
        strength); None: fixed."""
        return None

    def weight_decay_at(self, progress: float, base: float) -> float:
        """The weight decay of the decayed parameter groups at a point of training (default the run's constant
        ``weight_decay``; DINO: a cosine from it to ``weight_decay_end``)."""
        return base

    def before_optimizer_step(self) -> None:
        """Called after the backward pass, before the optimizer step (DINO: gradient clipping, frozen last layer)."""

    def exported_backbone(self) -> nn.Module:
        """The encoder ``pretrain`` exports (default the trained backbone; DynACL: its momentum key encoder)."""
        return self.backbone

    def export_normalization(self) -> tuple[list[float], list[float]] | None:
        """(mean, std) the exported backbone expects when not the run's ``mean``/``std`` (DeACL: its teacher's,
        applied inside the method); None: the run's."""
        return None

    def epoch_stats(self) -> dict[str, str]:
        """Extra log.csv columns for the epoch just finished (e.g. ASTrA's action distributions)."""
        return {}

    def plot_log(self, log_csv: Path, run_dir: Path) -> None:
        """Redraw plots from ``log.csv`` after each epoch (e.g. ASTrA's policy.png); nothing by default."""

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """(online, target) modules updated as target ← m·target + (1 − m)·online after each step."""
        return []

    def momentum_at(self, progress: float) -> float:
        """The target momentum at a point of training: ``cfg.momentum`` raised to 1 by a cosine when
        ``cfg.momentum_cosine`` (BYOL, DINO), else constant (MoCo)."""
        base = float(getattr(self.cfg, "momentum", 0.996))
        if getattr(self.cfg, "momentum_cosine", True):
            return 1 - (1 - base) * (math.cos(math.pi * progress) + 1) / 2
        return base


def frozen_copy(module: nn.Module) -> nn.Module:
    """A copy for a momentum target: same weights, no gradients."""
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float, *, buffers: bool = True) -> None:
    """target ← m·target + (1 − m)·online for parameters; buffers (BN statistics) are copied when ``buffers``."""
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.mul_(momentum).add_(o.detach(), alpha=1 - momentum)
    if buffers:
        for t, o in zip(target.buffers(), online.buffers(), strict=True):
            t.copy_(o)


def mlp(dims: list[int], *, last_bn: bool = False) -> nn.Sequential:
    """Linear-BN-ReLU layers through ``dims``, the last Linear without ReLU (optionally with BN)."""
    layers: list[nn.Module] = []
    for i in range(len(dims) - 1):
        last = i == len(dims) - 2
        layers.append(nn.Linear(dims[i], dims[i + 1], bias=last and not last_bn))
        if not last:
            layers += [nn.BatchNorm1d(dims[i + 1]), nn.ReLU(inplace=True)]
        elif last_bn:
            layers.append(nn.BatchNorm1d(dims[i + 1], affine=False))
    return nn.Sequential(*layers)
