"""MoCo v3 (Chen, Xie & He, "An Empirical Study of Training Self-Supervised Vision Transformers", ICCV 2021), as
the authors' ``moco/builder.py``, ``main_moco.py`` and ``CONFIG.md``:

- base encoder = backbone + projector, momentum encoder = its EMA copy (parameters only; its BatchNorms keep their
  own statistics), momentum 0.99 raised to 1 by a cosine (``--moco-m-cos``, ``adjust_moco_momentum``);
- a predictor on the base branch; loss ctr(q1, k2) + ctr(q2, k1), ctr = 2τ · CE(q·kᵀ / τ) with the other keys of
  the batch (all ranks) as negatives, τ 1.0 for ResNets and 0.2 for ViTs;
- ResNet: projector 2 layers (c → 4096 → 256), ViT: 3 layers; predictor 2 layers (256 → 4096 → 256), with a last
  affine-free BatchNorm on the projector (and on the ViT predictor);
- ViT: the patch projection is a frozen random layer (``--stop-grad-conv1``).

Views: our SimCLR pipeline (crop scale 0.08–1, jitter, grayscale) — MoCo v3's asymmetric blur and solarization
are not in it.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from ssl_robustbench.distributed import gather_with_grad, rank
from ssl_robustbench.methods.base import METHODS, Method, frozen_copy
from ssl_robustbench.transforms.views import ViewSpec


@dataclasses.dataclass(frozen=True)
class MoCoV3Config:
    """``moco-dim`` 256, ``moco-mlp-dim`` 4096, ``moco-m`` 0.99 with its cosine, ``moco-t`` (None: 1.0 for a ResNet,
    0.2 for a ViT) and ``stop-grad-conv1`` (ViTs)."""

    dim: int = 256
    mlp_dim: int = 4096
    temperature: float | None = None
    momentum: float = 0.99
    momentum_cosine: bool = True
    freeze_patch_embed: bool = True


def build_mlp(layers: int, in_dim: int, mlp_dim: int, out_dim: int, *, last_bn: bool = True) -> nn.Sequential:
    """``MoCo._build_mlp``: Linear (no bias) - BN - ReLU blocks, the last Linear followed by an affine-free BN."""
    out: list[nn.Module] = []
    for i in range(layers):
        d1, d2 = in_dim if i == 0 else mlp_dim, out_dim if i == layers - 1 else mlp_dim
        out.append(nn.Linear(d1, d2, bias=False))
        if i < layers - 1:
            out += [nn.BatchNorm1d(d2), nn.ReLU(inplace=True)]
        elif last_bn:
            out.append(nn.BatchNorm1d(d2, affine=False))
    return nn.Sequential(*out)


def _patch_embed(backbone: nn.Module) -> nn.Module | None:
    """The patch projection of a timm ViT (inside our adapters), or None for other backbones."""
    for module in backbone.modules():
        embed = getattr(module, "patch_embed", None)
        if embed is not None and hasattr(embed, "proj"):
            return embed.proj
    return None


@METHODS.register("mocov3")
class MoCoV3(Method):
    Config = MoCoV3Config
    paper = 'Chen et al., "An Empirical Study of Training Self-Supervised Vision Transformers", ICCV 2021'
    default_views = (ViewSpec("global", 2, scale=(0.08, 1.0)),)
    ema_buffers = False

    def __init__(self, backbone: nn.Module, cfg: MoCoV3Config) -> None:
        patch = _patch_embed(backbone)
        if patch is not None and cfg.freeze_patch_embed:
            patch.requires_grad_(False)  # a random patch projection, as --stop-grad-conv1
        super().__init__(backbone, cfg)
        self.vit = patch is not None
        self.temperature = cfg.temperature if cfg.temperature is not None else (0.2 if self.vit else 1.0)
        self.projector = build_mlp(3 if self.vit else 2, backbone.num_features, cfg.mlp_dim, cfg.dim)
        self.predictor = build_mlp(2, cfg.dim, cfg.mlp_dim, cfg.dim, last_bn=self.vit)
        self.key_backbone, self.key_projector = frozen_copy(backbone), frozen_copy(self.projector)

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.backbone, self.key_backbone), (self.projector, self.key_projector)]

    def contrastive(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """2τ · CE of q against every rank's keys, the positive at this rank's offset (``contrastive_loss``)."""
        q, k = F.normalize(q, dim=1), F.normalize(gather_with_grad(k.detach()), dim=1)
        labels = torch.arange(len(q), device=q.device) + len(q) * rank()
        return F.cross_entropy(q @ k.T / self.temperature, labels) * (2 * self.temperature)

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        x1, x2 = views[0], views[1]
        q1, q2 = (self.predictor(self.projector(self.backbone(x))) for x in (x1, x2))  # BN statistics per view
        with torch.no_grad():
            k1, k2 = (self.key_projector(self.key_backbone(x)) for x in (x1, x2))
        return {"loss": self.contrastive(q1, k2) + self.contrastive(q2, k1)}
