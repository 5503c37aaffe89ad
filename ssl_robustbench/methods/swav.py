"""SwAV (Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster Assignments", NeurIPS
2020): swapped prediction of Sinkhorn codes of the global views from every other view, over multi-crop views."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from ssl_robustbench import distributed as ddp
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
    queue_size: int = 0  # past embeddings per global view joining the Sinkhorn problem (ImageNet, batch 256: 3,840)


@METHODS.register("swav")
class SwAV(Method):
    Config = SwAVConfig
    paper = 'Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster Assignments", NeurIPS 2020'
    default_views = multi_crop((0.14, 1.0), (0.05, 0.14), local=4, local_fraction=0.45)

    def __init__(self, backbone: nn.Module, cfg: SwAVConfig) -> None:
        super().__init__(backbone, cfg)
        self.projector = mlp([backbone.num_features, cfg.proj_hidden, cfg.proj_dim])
        self.prototypes = nn.Linear(cfg.proj_dim, cfg.prototypes, bias=False)
        self.register_buffer("queue", torch.zeros(2, cfg.queue_size, cfg.proj_dim))
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        with torch.no_grad():  # prototypes stay on the unit sphere
            self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))
        scores, embeddings = [], []
        for chunk in _by_size(views):
            z = F.normalize(self.projector(self.backbone(chunk)), dim=1)
            embeddings.append(z)
            scores += list(self.prototypes(z).chunk(len(chunk) // len(views[0])))
        c = self.cfg
        queued = None
        if c.queue_size and int(self.queue_filled) >= c.queue_size:  # use the queue once it is full
            with torch.no_grad():
                queued = [self.prototypes(self.queue[i]) for i in range(2)]
        loss = swav_loss(scores, temperature=c.temperature, epsilon=c.epsilon, iterations=c.sinkhorn_iterations,
                         queued=queued, all_reduce=ddp.all_reduce_sum)
        if c.queue_size and self.training:
            self._enqueue(embeddings[0].detach().chunk(2))
        return {"loss": loss}

    @torch.no_grad()
    def _enqueue(self, globals_: tuple[torch.Tensor, torch.Tensor]) -> None:
        for i, z in enumerate(globals_):
            z = z[: self.cfg.queue_size]
            self.queue[i] = torch.cat([z, self.queue[i][: self.cfg.queue_size - len(z)]])
        self.queue_filled.add_(len(globals_[0]))
