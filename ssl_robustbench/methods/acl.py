"""ACL (Jiang et al., "Robust Pre-Training by Adversarial Contrastive Learning", NeurIPS 2020) with a pluggable
attack strategy: ``fixed`` (one PGD budget for every sample, the Self-AT baseline) or ``astra`` (ASTrA: Chhipa et
al., ICLR 2025 — a strategy network picks each sample's ε / steps / step size, trained by REINFORCE).

The encoder has dual BatchNorm (``normal`` for clean, ``pgd`` for adversarial views). Adversarial views maximize
NT-Xent through the ``pgd`` branch (eval mode, ``attacks/per_sample.py``). Target loss:
(NT-Xent(clean) + NT-Xent(adv)) / 2 + ``sim_weight`` · NT-Xent(clean_i ↔ adv_i) (ASTrA's mixed contrastive term:
0.5 with ``astra``, 0 for the ``fixed`` baseline unless set). Views must be in [0, 1] pixels: recipes set
``mean: [0, 0, 0]``, ``std: [1, 1, 1]`` as the released ACL/ASTrA code does. Single-process (the strategy
network's own update does not fit DDP's reducer).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from ssl_robustbench import distributed as ddp
from ssl_robustbench.attacks.per_sample import per_sample_pgd
from ssl_robustbench.backbones.dual_bn import bn_branch, convert_dual_bn
from ssl_robustbench.errors import UserError
from ssl_robustbench.losses import nt_xent
from ssl_robustbench.methods.base import METHODS, Method, mlp
from ssl_robustbench.training.attack_strategy import STRATEGIES
from ssl_robustbench.transforms.views import ViewSpec


@dataclasses.dataclass(frozen=True)
class ACLConfig:
    """Projector, τ 0.5, the fixed attack (ε 8/255, 5 steps of 2/255), the mixed-loss weight and ASTrA's policy
    settings from the authors' code (update every 10 steps; LARS lr 0.1, warmed up over the encoder's warmup epochs
    then cosine to 1e-6; wd 1e-6; grad-clip 1.0; reward weights r1 = 0, r2 = r3 = 1)."""

    proj_hidden: int = 512
    proj_dim: int = 128
    temperature: float = 0.5
    strategy: str = "fixed"
    eps: float = 8 / 255
    steps: int = 5
    step_size: float = 2 / 255
    sim_weight: float | None = None  # None: ASTrA's 0.5 with the astra strategy, 0 (plain ACL) with fixed
    strategy_arch: str = "tiny_resnet/16-32-64-128"
    policy_interval: int = 10
    policy_lr: float = 0.1
    policy_clip: float = 1.0
    r1: float = 0.0
    r2: float = 1.0
    r3: float = 1.0
    strength: tuple[float, float] = (1.0, 1.0)  # DynACL: augmentation strength from → to over training

    def __post_init__(self) -> None:
        from ssl_robustbench.training.attack_strategy import STRATEGIES

        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES.names())}, not {self.strategy!r}")


@METHODS.register("acl")
class ACL(Method):
    Config = ACLConfig
    #: ACL / ASTrA's CIFAR views: RandomResizedCrop scale (0.1, 1), flip, jitter (0.4, 0.4, 0.4, 0.1) p 0.8, grayscale
    #: p 0.2 (SimCLR colour strength 0.5).
    default_views = (ViewSpec("global", 2, scale=(0.1, 1.0), color_strength=0.5),)

    def __init__(self, backbone: nn.Module, cfg: ACLConfig) -> None:
        if ddp.launched():
            raise UserError("acl (and its astra strategy) trains in one process; run it without torchrun")
        super().__init__(convert_dual_bn(backbone), cfg)
        self.projector = mlp([backbone.num_features, cfg.proj_hidden, cfg.proj_dim])
        self.strategy = STRATEGIES.get(cfg.strategy)(cfg)

    def embed(self, x: torch.Tensor, branch: str) -> torch.Tensor:
        with bn_branch(self.backbone, branch):
            return self.projector(self.backbone(x))

    def attack(self, x: torch.Tensor, eps, steps, size) -> torch.Tensor:
        """Per-sample PGD on NT-Xent through the ``pgd`` branch, in eval mode, gradients to the input only."""
        was_training, params = self.training, list(self.parameters())
        flags = [p.requires_grad for p in params]
        self.eval()
        for p in params:
            p.requires_grad_(False)
        try:
            return per_sample_pgd(lambda z: nt_xent(*self.embed(z, "pgd").chunk(2), temperature=self.cfg.temperature),
                                  x, eps, steps, size)
        finally:
            for p, flag in zip(params, flags, strict=True):
                p.requires_grad_(flag)
            self.train(was_training)

    def losses(self, x: torch.Tensor, adv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """NT-Xent of the clean views (``normal`` branch) and of their adversarial views (``pgd`` branch)."""
        t = self.cfg.temperature
        return nt_xent(*self.embed(x, "normal").chunk(2), temperature=t), nt_xent(
            *self.embed(adv, "pgd").chunk(2), temperature=t)

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        c = self.cfg
        x = torch.cat(views[:2])
        self.strategy.before_step(self, x)
        adv = self.attack(x, *self.strategy.budgets(x))
        clean, attacked = self.embed(x, "normal"), self.embed(adv, "pgd")
        loss = (nt_xent(*clean.chunk(2), temperature=c.temperature)
                + nt_xent(*attacked.chunk(2), temperature=c.temperature)) / 2
        if self.mixed_weight:
            loss = loss + self.mixed_weight * nt_xent(clean, attacked, temperature=c.temperature)
        return {"loss": loss}

    @property
    def mixed_weight(self) -> float:
        """Weight of the clean ↔ adversarial NT-Xent term (``sim_weight``, else the strategy's default)."""
        return self.cfg.sim_weight if self.cfg.sim_weight is not None else self.strategy.mixed_weight

    @property
    def card_method(self) -> str | None:
        """``astra`` when ASTrA picks the attacks; else the registry name (``acl``, ``dynacl``)."""
        return self.strategy.card_method

    def views_at(self, progress: float, size: int) -> list[ViewSpec] | None:
        """The views of this point of training when the augmentation strength is annealed (DynACL), else None.
        Strength s gives DynACL's CIFAR pipeline: crop scale (1 − 0.9s, 1), jitter (0.4s, 0.4s, 0.4s, 0.1s) with
        p = 0.8s, grayscale p = 0.2s."""
        start, end = self.cfg.strength
        if start == end == 1.0:
            return None
        s = start + (end - start) * progress
        return [ViewSpec("global", 2, size=size, scale=(1 - 0.9 * s, 1.0), color_strength=s / 2, jitter_p=0.8 * s,
                         gray_p=0.2 * s)]

    def plot_log(self, log_csv: Path, run_dir: Path) -> None:
        self.strategy.plot_log(log_csv, run_dir)

    def epoch_stats(self) -> dict[str, str]:
        """The strategy's per-epoch statistics (ASTrA: action distributions and mean reward)."""
        return self.strategy.epoch_stats()


@dataclasses.dataclass(frozen=True)
class DynACLConfig(ACLConfig):
    """DynACL (Luo et al., "Rethinking the Effect of Data Augmentation in Adversarial Contrastive Learning", ICLR
    2023): ACL with the augmentation strength annealed from 1 to 0 over training (its linear-probing
    post-processing, DynACL++, is not part of pretraining)."""

    strength: tuple[float, float] = (1.0, 0.0)


@METHODS.register("dynacl")
class DynACL(ACL):
    Config = DynACLConfig
