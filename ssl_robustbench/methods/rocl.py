"""RoCL (Kim, Tack & Hwang, "Adversarial Self-Supervised Contrastive Learning", NeurIPS 2020), as the authors'
``src/rocl_train.py``, ``src/attack_lib.py`` (``RepresentationAdv``), ``src/loss.py`` and ``src/argument.py``:

- the instance-wise attack perturbs view 1 to maximise NT-Xent(adv, view 2) (``attack_to=other``; random start in
  the ε ball, ε 0.0314, 7 steps of 0.007, model in eval mode);
- the loss is NT-Xent over the three blocks [view 1; view 2; adv] (every pair of blocks a positive pair) plus
  (1/λ)·NT-Xent(adv, view 2) from a second forward pass (``regularize_to=other``, λ = 256);
- their NT-Xent (``loss.py``): similarities (1/τ)·ẑ·ẑᵀ with the right factor detached, τ 0.5, 1e-8 guards;
- projector Linear(c, 2048)-ReLU-Linear(2048, 128) (``models/projector.py``), single BatchNorm encoder;
- views: RandomResizedCrop (scale 0.08–1), flip, jitter 0.4/0.4/0.4/0.1 (strength 0.5) p 0.8, grayscale p 0.2.

With ``--strategy astra`` the per-sample budgets of the attack come from ASTrA's strategy network and the mixed
term (0.5 · NT-Xent(view 1 ↔ adv)) is added.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ssl_robustbench.config import bounded
from ssl_robustbench.losses import nt_xent
from ssl_robustbench.methods.base import METHODS
from ssl_robustbench.methods.self_at import SelfAT, SelfATConfig
from ssl_robustbench.transforms.views import ViewSpec


def rocl_nt_xent(blocks: list[torch.Tensor], temperature: float) -> torch.Tensor:
    """RoCL's NT-Xent over k stacked blocks of N embeddings: rows of two different blocks at the same index are
    positives; (1/τ)·ẑ·ẑᵀ with the right factor detached; summed over ordered block pairs, divided by kN."""
    z = torch.cat(blocks)
    n, k = len(blocks[0]), len(blocks)
    unit = z / (z.norm(dim=1, keepdim=True) + 1e-8)
    sim = torch.exp(unit @ unit.T.detach() / temperature) * (1 - torch.eye(len(z), device=z.device))
    nll = -torch.log(sim / (sim.sum(dim=1, keepdim=True) + 1e-8) + 1e-8)
    idx = torch.arange(n, device=z.device)
    total = sum(nll[i * n + idx, j * n + idx].sum() for i in range(k) for j in range(k) if i != j)
    return total / (k * n)


@dataclasses.dataclass(frozen=True)
class RoCLConfig(SelfATConfig):
    """RoCL's attack (ε 0.0314, 7 steps of 0.007), λ 256 and projector widths (``src/argument.py``)."""

    eps: float = 0.0314
    steps: int = 7
    step_size: float = 0.007
    lamda: float = bounded(256.0, low=0.0, low_open=True)
    proj_hidden: int = bounded(2048, low=1)
    proj_dim: int = bounded(128, low=1)


@METHODS.register("rocl")
class RoCL(SelfAT):
    Config = RoCLConfig
    paper = 'Kim et al., "Adversarial Self-Supervised Contrastive Learning", NeurIPS 2020'
    default_views = (ViewSpec("global", 2, scale=(0.08, 1.0), color_strength=0.5),)

    def __init__(self, backbone: nn.Module, cfg: RoCLConfig) -> None:
        super().__init__(backbone, cfg)
        self.projector = nn.Sequential(nn.Linear(backbone.num_features, cfg.proj_hidden), nn.ReLU(inplace=True),
                                       nn.Linear(cfg.proj_hidden, cfg.proj_dim))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(self.backbone(x))

    def attack_images(self, x: torch.Tensor) -> torch.Tensor:
        return x[: len(x) // 2]  # view 1 is attacked

    def attack_objective(self, x: torch.Tensor):
        """NT-Xent(adv, view 2), view 2's embedding a constant (the gradient goes to the attacked view only)."""
        with torch.no_grad():
            target = self.encode(x[len(x) // 2:])
        return lambda e: rocl_nt_xent([e, target], self.cfg.temperature)

    def embed_rows(self, z: torch.Tensor, rows: torch.Tensor, n: int) -> torch.Tensor:
        return self.encode(z)

    def losses(self, x: torch.Tensor, adv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """NT-Xent(view 1, view 2) and NT-Xent(adv, view 2)."""
        first, second = self.encode(x).chunk(2)
        return (nt_xent(first, second, temperature=self.cfg.temperature),
                nt_xent(self.encode(adv), second, temperature=self.cfg.temperature))

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        c = self.cfg
        x1, x2 = views[0], views[1]
        adv = self.adversarial_views(torch.cat([x1, x2]))
        e1, e2, e_adv = self.encode(torch.cat([x1, x2, adv])).chunk(3)
        loss = rocl_nt_xent([e1, e2, e_adv], c.temperature)
        loss = loss + rocl_nt_xent(list(self.encode(torch.cat([adv, x2])).chunk(2)), c.temperature) / c.lamda
        if self.mixed_weight:
            loss = loss + self.mixed_weight * nt_xent(e1, e_adv, temperature=c.temperature)
        return {"loss": loss}

