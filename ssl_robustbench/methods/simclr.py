"""SimCLR (Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations", ICML 2020)."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ssl_robustbench.distributed import gather_with_grad
from ssl_robustbench.losses import nt_xent
from ssl_robustbench.methods.base import METHODS, Method, mlp


@dataclasses.dataclass(frozen=True)
class SimCLRConfig:
    """Projector widths and the NT-Xent temperature."""

    proj_hidden: int = 512
    proj_dim: int = 128
    temperature: float = 0.2

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError("simclr temperature must be > 0")


@METHODS.register("simclr")
class SimCLR(Method):
    """Backbone + 2-layer MLP projector; NT-Xent between the projections of two views, the negatives gathered
    from every rank under torchrun."""

    Config = SimCLRConfig
    paper = 'Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations", ICML 2020'

    def __init__(self, backbone: nn.Module, cfg: SimCLRConfig) -> None:
        super().__init__(backbone, cfg)
        self.projector = mlp([backbone.num_features, cfg.proj_hidden, cfg.proj_dim])

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """``views``: two [B,3,H,W] normalized batches → ``{"loss": scalar}``."""
        z = self.projector(self.backbone(torch.cat(views[:2])))
        z1, z2 = z.chunk(2)
        return {"loss": nt_xent(gather_with_grad(z1), gather_with_grad(z2), temperature=self.cfg.temperature)}
