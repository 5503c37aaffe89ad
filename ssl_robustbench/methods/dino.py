"""DINO (Caron et al., "Emerging Properties in Self-Supervised Vision Transformers", ICCV 2021): a student
matches a momentum teacher's centred, sharpened output over multi-crop views; teacher temperature warmed up."""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from ssl_robustbench.distributed import mean_over_ranks
from ssl_robustbench.losses import dino_loss, updated_center
from ssl_robustbench.methods.base import METHODS, Method, frozen_copy, multi_crop


@dataclasses.dataclass(frozen=True)
class DINOConfig:
    """Head MLP → L2-normalized bottleneck → weight-normalized prototypes (ImageNet: 2048 hidden, 256 bottleneck,
    out_dim 65,536); temperatures (student 0.1, teacher 0.04 → 0.07 warm-up over ``teacher_warmup`` of training);
    centre momentum 0.9; teacher momentum 0.996 → 1 (cosine). The schedules of ``main_dino.py``: weight decay
    0.04 → 0.4 by a cosine over training (biases and norms undecayed), each parameter's gradient clipped to norm 3
    (``utils.clip_gradients``), the last layer's gradients dropped in the first epoch
    (``utils.cancel_gradients_last_layer``)."""

    hidden: int = 512
    bottleneck: int = 128
    out_dim: int = 1024
    student_temp: float = 0.1
    warmup_teacher_temp: float = 0.04
    teacher_temp: float = 0.07
    teacher_warmup: float = 0.3
    center_momentum: float = 0.9
    momentum: float = 0.996
    momentum_cosine: bool = True
    weight_decay_end: float | None = 0.4  # cosine from the run's weight_decay (0.04 in the recipes); None: constant
    clip_grad: float | None = 3.0  # per-parameter gradient-norm clip; None: off
    freeze_last_layer: int = 1  # epochs in which the prototypes' layer gets no update


class DINOHead(nn.Module):
    def __init__(self, dim: int, cfg: DINOConfig) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, cfg.hidden), nn.GELU(),
                                 nn.Linear(cfg.hidden, cfg.bottleneck))
        self.last = nn.utils.parametrizations.weight_norm(nn.Linear(cfg.bottleneck, cfg.out_dim, bias=False))
        self.last.parametrizations.weight.original0.data.fill_(1)
        self.last.parametrizations.weight.original0.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last(F.normalize(self.mlp(x), dim=-1))


@METHODS.register("dino")
class DINO(Method):
    Config = DINOConfig
    paper = 'Caron et al., "Emerging Properties in Self-Supervised Vision Transformers", ICCV 2021'
    default_views = multi_crop((0.4, 1.0), (0.05, 0.4), local=4, local_fraction=0.45)

    def __init__(self, backbone: nn.Module, cfg: DINOConfig) -> None:
        super().__init__(backbone, cfg)
        self.head = DINOHead(backbone.num_features, cfg)
        self.teacher_backbone, self.teacher_head = frozen_copy(backbone), frozen_copy(self.head)
        self.register_buffer("center", torch.zeros(cfg.out_dim))

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.backbone, self.teacher_backbone), (self.head, self.teacher_head)]

    def weight_decay_at(self, progress: float, base: float) -> float:
        end = self.cfg.weight_decay_end
        return base if end is None else end + 0.5 * (base - end) * (1 + math.cos(math.pi * progress))

    def before_optimizer_step(self) -> None:
        c = self.cfg
        if c.clip_grad is not None:
            for p in (*self.backbone.parameters(), *self.head.parameters()):
                if p.grad is not None:
                    coef = c.clip_grad / (p.grad.norm() + 1e-6)
                    if coef < 1:
                        p.grad.mul_(coef)
        if self.epoch < c.freeze_last_layer:
            for p in self.head.last.parameters():
                p.grad = None

    def teacher_temperature(self) -> float:
        c = self.cfg
        if self.progress >= c.teacher_warmup:
            return c.teacher_temp
        return c.warmup_teacher_temp + (c.teacher_temp - c.warmup_teacher_temp) * self.progress / c.teacher_warmup

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        student = [self.head(self.backbone(v)) for v in _by_size(views)]
        student = [s for chunk in student for s in chunk.chunk(len(chunk) // len(views[0]))]
        with torch.no_grad():
            teacher = list(self.teacher_head(self.teacher_backbone(torch.cat(views[:2]))).chunk(2))
        loss = dino_loss(student, teacher, self.center, student_temp=self.cfg.student_temp,
                         teacher_temp=self.teacher_temperature())
        if self.training:
            batch_center = mean_over_ranks(torch.cat(teacher).mean(0, keepdim=True))
            self.center.copy_(updated_center(self.center, [batch_center], momentum=self.cfg.center_momentum))
        return {"loss": loss}


def _by_size(views: list[torch.Tensor]) -> list[torch.Tensor]:
    """Consecutive views of the same size concatenated (one backbone pass per resolution, as DINO does)."""
    groups: list[list[torch.Tensor]] = []
    for v in views:
        if groups and groups[-1][0].shape == v.shape:
            groups[-1].append(v)
        else:
            groups.append([v])
    return [torch.cat(g) for g in groups]
