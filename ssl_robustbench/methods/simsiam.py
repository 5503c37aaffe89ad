"""SimSiam (Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021): projector + predictor,
symmetric negative cosine with stop-gradient, no negatives and no momentum encoder."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ssl_robustbench.losses import negative_cosine
from ssl_robustbench.methods.base import METHODS, Method, mlp


@dataclasses.dataclass(frozen=True)
class SimSiamConfig:
    """3-layer projector with BN on its output, 2-layer bottleneck predictor (ImageNet: 2048 → 512 → 2048)."""

    proj_dim: int = 256
    pred_hidden: int = 64


@METHODS.register("simsiam")
class SimSiam(Method):
    Config = SimSiamConfig
    paper = 'Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021'

    def __init__(self, backbone: nn.Module, cfg: SimSiamConfig) -> None:
        super().__init__(backbone, cfg)
        d = backbone.num_features
        self.projector = mlp([d, cfg.proj_dim, cfg.proj_dim, cfg.proj_dim], last_bn=True)
        self.predictor = mlp([cfg.proj_dim, cfg.pred_hidden, cfg.proj_dim])

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        z1, z2 = self.projector(self.backbone(torch.cat(views[:2]))).chunk(2)
        p1, p2 = self.predictor(z1), self.predictor(z2)
        return {"loss": (negative_cosine(p1, z2) + negative_cosine(p2, z1)) / 2}
