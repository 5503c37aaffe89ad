"""Barlow Twins (Zbontar et al., ICML 2021) and VICReg (Bardes et al., ICLR 2022): a projector (expander) and a
redundancy-reduction loss between two views' embeddings; no negatives, no momentum encoder."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ssl_robustbench.distributed import gather_with_grad
from ssl_robustbench.losses import barlow_twins_loss, vicreg_loss
from ssl_robustbench.methods.base import METHODS, Method, mlp


@dataclasses.dataclass(frozen=True)
class BarlowTwinsConfig:
    """3-layer projector (ImageNet: 8192-8192-8192) and the off-diagonal weight λ = 5e-3."""

    proj_dim: int = 1024
    lambd: float = 5e-3


@dataclasses.dataclass(frozen=True)
class VICRegConfig:
    """3-layer expander (ImageNet: 8192 wide) and the loss weights λ = μ = 25, ν = 1."""

    proj_dim: int = 1024
    sim_weight: float = 25.0
    var_weight: float = 25.0
    cov_weight: float = 1.0


class _TwoView(Method):
    def __init__(self, backbone: nn.Module, cfg) -> None:
        super().__init__(backbone, cfg)
        self.projector = mlp([backbone.num_features, cfg.proj_dim, cfg.proj_dim, cfg.proj_dim])

    def embed(self, views: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        z1, z2 = self.projector(self.backbone(torch.cat(views[:2]))).chunk(2)
        return gather_with_grad(z1), gather_with_grad(z2)  # batch statistics over the global batch


@METHODS.register("barlowtwins")
class BarlowTwins(_TwoView):
    Config = BarlowTwinsConfig
    paper = 'Zbontar et al., "Barlow Twins: Self-Supervised Learning via Redundancy Reduction", ICML 2021'

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"loss": barlow_twins_loss(*self.embed(views), lambd=self.cfg.lambd)}


@METHODS.register("vicreg")
class VICReg(_TwoView):
    Config = VICRegConfig
    paper = 'Bardes et al., "VICReg: Variance-Invariance-Covariance Regularization", ICLR 2022'

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        c = self.cfg
        return {"loss": vicreg_loss(*self.embed(views), sim_weight=c.sim_weight, var_weight=c.var_weight,
                                    cov_weight=c.cov_weight)}
