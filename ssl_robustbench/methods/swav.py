"""SwAV (Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster Assignments", NeurIPS
2020): swapped prediction of Sinkhorn codes of the global views from every other view, over multi-crop views."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from ssl_robustbench.losses import swav_loss
from ssl_robustbench.methods.base import METHODS, Method, mlp, multi_crop
from ssl_robustbench.methods.dino import _by_size


@dataclasses.dataclass(frozen=True)
class SwAVConfig:
    """Projector (ImageNet: 2048 → 128), 3,000 prototypes on ImageNet (fewer here), τ 0.1, Sinkhorn ε 0.05 with 3
    iterations."""

    proj_hidden: int = 512
    proj_dim: int = 128
    prototypes: int = 100
    temperature: float = 0.1
    epsilon: float = 0.05
    sinkhorn_iterations: int = 3


@METHODS.register("swav")
class SwAV(Method):
    Config = SwAVConfig
    default_views = multi_crop((0.14, 1.0), (0.05, 0.14), local=4, local_fraction=0.45)

    def __init__(self, backbone: nn.Module, cfg: SwAVConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = backbone
        self.projector = mlp([backbone.num_features, cfg.proj_hidden, cfg.proj_dim])
        self.prototypes = nn.Linear(cfg.proj_dim, cfg.prototypes, bias=False)

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        with torch.no_grad():  # prototypes stay on the unit sphere
            self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))
        scores = []
        for chunk in _by_size(views):
            z = F.normalize(self.projector(self.backbone(chunk)), dim=1)
            scores += list(self.prototypes(z).chunk(len(chunk) // len(views[0])))
        c = self.cfg
        return {"loss": swav_loss(scores, temperature=c.temperature, epsilon=c.epsilon,
                                  iterations=c.sinkhorn_iterations)}
