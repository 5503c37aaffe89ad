"""MoCo v2 (He et al., CVPR 2020; Chen et al., "Improved Baselines with Momentum Contrastive Learning", 2020):
a momentum key encoder and a queue of past keys as negatives."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from ssl_robustbench.distributed import gather_with_grad
from ssl_robustbench.losses import info_nce
from ssl_robustbench.methods.base import METHODS, Method, frozen_copy, mlp


@dataclasses.dataclass(frozen=True)
class MoCoConfig:
    """MoCo v2: 2-layer MLP head, queue of 65,536 keys on ImageNet (smaller here), τ 0.2, momentum 0.999."""

    proj_hidden: int = 512
    proj_dim: int = 128
    queue_size: int = 4096
    temperature: float = 0.2
    momentum: float = 0.99
    momentum_cosine: bool = False


@METHODS.register("mocov2")
class MoCo(Method):
    """Query encoder (backbone + head) trained; key encoder = its momentum copy; symmetric loss over the two views."""

    Config = MoCoConfig
    paper = 'Chen et al., "Improved Baselines with Momentum Contrastive Learning", arXiv 2020'

    def __init__(self, backbone: nn.Module, cfg: MoCoConfig) -> None:
        super().__init__(backbone, cfg)
        self.projector = mlp([backbone.num_features, cfg.proj_hidden, cfg.proj_dim])
        self.key_backbone, self.key_projector = frozen_copy(backbone), frozen_copy(self.projector)
        self.register_buffer("queue", F.normalize(torch.randn(cfg.queue_size, cfg.proj_dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.backbone, self.key_backbone), (self.projector, self.key_projector)]

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        q1, q2 = self.projector(self.backbone(torch.cat(views[:2]))).chunk(2)
        with torch.no_grad():
            k1, k2 = self.key_projector(self.key_backbone(torch.cat(views[:2]))).chunk(2)
        loss = (info_nce(q1, k2, self.queue, temperature=self.cfg.temperature)
                + info_nce(q2, k1, self.queue, temperature=self.cfg.temperature)) / 2
        if self.training:
            self._enqueue(gather_with_grad(torch.cat([k1, k2])).detach())
        return {"loss": loss}

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        keys = F.normalize(keys, dim=1)[: len(self.queue)]
        ptr = int(self.queue_ptr)
        idx = (torch.arange(len(keys), device=keys.device) + ptr) % len(self.queue)
        self.queue[idx] = keys
        self.queue_ptr.fill_((ptr + len(keys)) % len(self.queue))
