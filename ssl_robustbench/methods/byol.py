"""BYOL (Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020): an online network with a predictor regresses a
momentum target network's projection; momentum raised from τ_base to 1 by a cosine."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ssl_robustbench.losses import byol_loss
from ssl_robustbench.methods.base import METHODS, Method, frozen_copy, mlp


@dataclasses.dataclass(frozen=True)
class BYOLConfig:
    """Projector/predictor MLPs (ImageNet: 4096 hidden, 256 out) and the base target momentum (0.996)."""

    proj_hidden: int = 512
    proj_dim: int = 128
    pred_hidden: int = 512
    momentum: float = 0.99
    momentum_cosine: bool = True


@METHODS.register("byol")
class BYOL(Method):
    Config = BYOLConfig
    paper = 'Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020'

    def __init__(self, backbone: nn.Module, cfg: BYOLConfig) -> None:
        super().__init__(backbone, cfg)
        self.projector = mlp([backbone.num_features, cfg.proj_hidden, cfg.proj_dim])
        self.predictor = mlp([cfg.proj_dim, cfg.pred_hidden, cfg.proj_dim])
        self.target_backbone, self.target_projector = frozen_copy(backbone), frozen_copy(self.projector)

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.backbone, self.target_backbone), (self.projector, self.target_projector)]

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        p1, p2 = self.predictor(self.projector(self.backbone(torch.cat(views[:2])))).chunk(2)
        with torch.no_grad():
            t1, t2 = self.target_projector(self.target_backbone(torch.cat(views[:2]))).chunk(2)
        return {"loss": (byol_loss(p1, t2) + byol_loss(p2, t1)) / 2}
