"""ACL (Jiang et al., "Robust Pre-Training by Adversarial Contrastive Learning", NeurIPS 2020) with a pluggable
attack strategy: ``fixed`` (one PGD budget for every sample, the Self-AT baseline) or ``astra`` (ASTrA: Chhipa et
al., ICLR 2025 — a strategy network picks each sample's ε / steps / step size, trained by REINFORCE).

Encoder and projector have dual BatchNorm (``normal`` for clean, ``pgd`` for adversarial views). The projector
is the released ``proj_head``: Linear(c, h)-BN-ReLU-Linear(h, c)-BN-ReLU-Linear(c, c)-BN (c the encoder's width,
the last two Linear without bias), h = c in ACL/DynACL (``models/resnet_multi_bn.py``) and 2048 in ASTrA
(``models/resnet_multi_bn_bottleneck.py``). Adversarial views maximize NT-Xent through the ``pgd`` branch (eval
mode, ``attacks/per_sample.py``). Target loss: ((2 − w)·NT-Xent(clean) + w·NT-Xent(adv)) / 2 + ``sim_weight`` ·
NT-Xent(clean_i ↔ adv_i), w = 1 except in DynACL; the mixed term is ASTrA's (0.5 with ``astra``, 0 for the
``fixed`` baseline unless set). Views must be in [0, 1] pixels: recipes set ``mean: [0, 0, 0]``, ``std: [1, 1, 1]``
as the released code does. Single-process (the strategy network's own update does not fit DDP's reducer).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ssl_robustbench.backbones.dual_bn import bn_branch, convert_dual_bn
from ssl_robustbench.config import bounded
from ssl_robustbench.losses import nt_xent
from ssl_robustbench.methods.base import METHODS, frozen_copy
from ssl_robustbench.methods.self_at import SelfAT, SelfATConfig
from ssl_robustbench.transforms.views import ViewSpec


@dataclasses.dataclass(frozen=True)
class ACLConfig(SelfATConfig):
    """ACL's τ 0.5 and fixed attack (ε 8/255, 5 steps of 2/255) with the shared Self-AT settings; ``proj_hidden``
    None: the strategy's (ASTrA 2048, ACL the encoder's width)."""

    proj_hidden: int | None = None


@METHODS.register("acl")
class ACL(SelfAT):
    Config = ACLConfig
    paper = 'Jiang et al., "Robust Pre-Training by Adversarial Contrastive Learning", NeurIPS 2020'
    #: ACL / ASTrA's CIFAR views: RandomResizedCrop scale (0.1, 1), flip, jitter (0.4, 0.4, 0.4, 0.1) p 0.8, grayscale
    #: p 0.2 (SimCLR colour strength 0.5).
    default_views = (ViewSpec("global", 2, scale=(0.1, 1.0), color_strength=0.5),)

    def __init__(self, backbone: nn.Module, cfg: ACLConfig) -> None:
        super().__init__(convert_dual_bn(backbone), cfg)
        width = backbone.num_features
        self.projector = convert_dual_bn(projection_head(width, cfg.proj_hidden or self.strategy.proj_hidden or width))

    def encode(self, x: torch.Tensor, branch: str) -> torch.Tensor:
        """Projected embeddings of ``x`` through the ``branch`` BatchNorms."""
        with bn_branch(self.backbone, branch), bn_branch(self.projector, branch):
            return self.projector(self.backbone(x))

    def embed(self, x: torch.Tensor, branch: str, second: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings of stacked views: ``x`` is [view 1; view 2] or, with ``second`` (a bool per row), any rows of
        it (``encode``; DynACL sends the second view's rows through its key encoder)."""
        return self.encode(x, branch)

    def attack_objective(self, x: torch.Tensor):
        """NT-Xent of the two adversarial views (ACL's PGD_contrastive), through the ``pgd`` branch."""
        return lambda e: nt_xent(*e.chunk(2), temperature=self.cfg.temperature)

    def embed_rows(self, z: torch.Tensor, rows: torch.Tensor, n: int) -> torch.Tensor:
        return self.embed(z, "pgd", second=rows >= n // 2)  # rows ≥ n/2 are the second view

    def losses(self, x: torch.Tensor, adv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """NT-Xent of the clean views (``normal`` branch) and of their adversarial views (``pgd`` branch)."""
        t = self.cfg.temperature
        return nt_xent(*self.embed(x, "normal").chunk(2), temperature=t), nt_xent(
            *self.embed(adv, "pgd").chunk(2), temperature=t)

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        c = self.cfg
        x = torch.cat(views[:2])
        adv = self.adversarial_views(x)
        clean, attacked = self.embed(x, "normal"), self.embed(adv, "pgd")
        w = self.adversarial_weight
        loss = ((2 - w) * nt_xent(*clean.chunk(2), temperature=c.temperature)
                + w * nt_xent(*attacked.chunk(2), temperature=c.temperature)) / 2
        if self.mixed_weight:
            loss = loss + self.mixed_weight * nt_xent(clean, attacked, temperature=c.temperature)
        return {"loss": loss}

    @property
    def adversarial_weight(self) -> float:
        """w of the adversarial NT-Xent against 2 − w of the clean one (1 in ACL; DynACL raises it)."""
        return 1.0


def projection_head(width: int, hidden: int) -> nn.Sequential:
    """The released ACL/DynACL/ASTrA ``proj_head``: three Linear layers width → hidden → width → width, each
    followed by BatchNorm1d, ReLU between (only the first Linear has a bias)."""
    return nn.Sequential(nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, width, bias=False), nn.BatchNorm1d(width), nn.ReLU(inplace=True),
                         nn.Linear(width, width, bias=False), nn.BatchNorm1d(width))


@dataclasses.dataclass(frozen=True)
class DynACLConfig(ACLConfig):
    """DynACL (Luo et al., "Rethinking the Effect of Data Augmentation in Adversarial Contrastive Learning", ICLR
    2023), as its ``train_DynACL.py``: augmentation strength 1 − ⌊e / F⌋·F / E at (0-based) epoch e of E, reloaded
    every F = ``strength_every`` (50) epochs; adversarial weight w = min(1 + ⌊(e + 1) / F⌋·(F / E)·``swap_param``,
    2) (2/3: w rises 1 → 1.67 over 1000 epochs); a momentum key encoder (m = ``key_momentum``, 0.99; parameters
    only, its BatchNorms keep their own statistics) embeds the second view, and it is the encoder exported (the
    ``model_encoder_k.pt`` that the authors evaluate). Its pseudo-label post-processing, DynACL++, is not part of
    pretraining."""

    strength_every: int = bounded(50, low=1)
    swap_param: float = bounded(2 / 3, low=0.0)
    key_momentum: float = bounded(0.99, low=0.0, high=1.0, high_open=True)


@METHODS.register("dynacl")
class DynACL(ACL):
    Config = DynACLConfig
    paper = 'Luo et al., "Rethinking the Effect of Data Augmentation in Adversarial Contrastive Learning", ICLR 2023'
    ema_buffers = False

    def __init__(self, backbone: nn.Module, cfg: DynACLConfig) -> None:
        super().__init__(backbone, cfg)
        self.key_backbone, self.key_projector = frozen_copy(self.backbone), frozen_copy(self.projector)

    def embed(self, x: torch.Tensor, branch: str, second: torch.Tensor | None = None) -> torch.Tensor:
        """The first view through the online encoder, the second through the key encoder (``swap=True``)."""
        if second is None:
            second = torch.arange(len(x), device=x.device) >= len(x) // 2
        out = None
        for rows, key in ((~second).nonzero()[:, 0], False), (second.nonzero()[:, 0], True):
            if not len(rows):
                continue
            if key:
                with bn_branch(self.key_backbone, branch), bn_branch(self.key_projector, branch):
                    emb = self.key_projector(self.key_backbone(x[rows]))
            else:
                emb = self.encode(x[rows], branch)
            out = emb.new_empty((len(x), *emb.shape[1:])) if out is None else out
            out = out.index_put((rows,), emb)
        return out

    @property
    def adversarial_weight(self) -> float:
        c = self.cfg
        return min(1.0 + ((self.epoch + 1) // c.strength_every) * (c.strength_every / self.epochs) * c.swap_param,
                   2.0)

    def views_at(self, epoch: int, epochs: int, size: int) -> list[ViewSpec]:
        """Strength s gives DynACL's CIFAR pipeline: crop scale (1 − 0.9s, 1), jitter (0.4s, 0.4s, 0.4s, 0.1s) with
        p = 0.8s, grayscale p = 0.2s."""
        every = self.cfg.strength_every
        s = 1 - (epoch // every) * every / epochs
        return [ViewSpec("global", 2, size=size, scale=(1 - 0.9 * s, 1.0), color_strength=s / 2, jitter_p=0.8 * s,
                         gray_p=0.2 * s)]

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.backbone, self.key_backbone), (self.projector, self.key_projector)]

    def momentum_at(self, progress: float) -> float:
        return self.cfg.key_momentum

    def exported_backbone(self) -> nn.Module:
        return self.key_backbone
