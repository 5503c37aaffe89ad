"""The shared frame of self-supervised adversarial training (Self-AT: ACL, DynACL, RoCL, DeACL): an attack strategy
picks each sample's PGD budget (``training/attack_strategy.py``: ``fixed`` or ``astra``), the method's own attack
objective is maximised by per-sample PGD in eval mode (``attacks/per_sample.py``), and its loss trains on the
adversarial views. ASTrA (Chhipa et al., ICLR 2025) is plug-and-play on every method through this one interface.

A method subclasses ``SelfAT`` and defines ``attack_images`` (which of the stacked views are attacked; default
all), ``attack_objective`` (the scalar of their embeddings that the attack maximises), ``embed_rows`` (the
per-sample encoder the attack runs through), ``losses`` (clean and adversarial losses, ASTrA's reward) and
``forward``. Views must be in [0, 1] pixels (recipes set mean 0, std 1).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ssl_robustbench import distributed as ddp
from ssl_robustbench.attacks.per_sample import per_sample_pgd
from ssl_robustbench.config import check_fields
from ssl_robustbench.errors import UserError
from ssl_robustbench.methods.base import METHODS, Method


@dataclasses.dataclass(frozen=True)
class SelfATConfig:
    """The attack strategy and its fixed budget, the mixed-loss weight and ASTrA's policy settings from the
    authors' code (update every 10 steps; LARS lr 0.1, warmed up over the encoder's warmup epochs then cosine to
    1e-6; wd 1e-6; grad-clip 1.0; reward weights r1 = 0, r2 = r3 = 1)."""

    temperature: float = 0.5
    strategy: str = "fixed"
    eps: float = 8 / 255
    steps: int = 5
    step_size: float = 2 / 255
    sim_weight: float | None = None  # None: ASTrA's 0.5 with the astra strategy, 0 with fixed
    strategy_arch: str = "tiny_resnet/16-32-64-128"
    policy_interval: int = 10
    policy_lr: float = 0.1
    policy_clip: float = 1.0
    r1: float = 0.0
    r2: float = 1.0
    r3: float = 1.0

    def __post_init__(self) -> None:
        """Checks the strategy name and every ``bounded`` field, the subclasses' (method-specific) ones included."""
        from ssl_robustbench.training.attack_strategy import STRATEGIES

        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES.names())}, not {self.strategy!r}")
        check_fields(self, "method_args")


class SelfAT(Method):
    """Base of the Self-AT methods: the strategy, the eval-mode per-sample attack, the mixed-loss weight and the
    strategy's logs and plots. Single-process (the strategy network's own update does not fit DDP's reducer)."""

    @property
    def name(self) -> str:
        """The registry name (cards name the method, ``<name>+astra`` with ASTrA; ACL + ASTrA is ``astra``)."""
        return METHODS.name_of(type(self))

    def __init__(self, backbone: nn.Module, cfg: SelfATConfig) -> None:
        from ssl_robustbench.training.attack_strategy import STRATEGIES

        if ddp.launched():
            raise UserError(f"{self.name} (and its astra strategy) trains in one process; run it without torchrun")
        super().__init__(backbone, cfg)
        self.strategy = STRATEGIES.get(cfg.strategy)(cfg)

    def attack_images(self, x: torch.Tensor) -> torch.Tensor:
        """The images attacked among the stacked views ``x`` (default: all of them)."""
        return x

    def attack_objective(self, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """The scalar of the attacked images' embeddings that the attack maximises (called in eval mode)."""
        raise NotImplementedError

    def embed_rows(self, z: torch.Tensor, rows: torch.Tensor, n: int) -> torch.Tensor:
        """Embeddings of rows ``rows`` (indices) of the ``n`` attacked images (per sample: called in eval mode)."""
        raise NotImplementedError

    def losses(self, x: torch.Tensor, adv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(clean loss, adversarial loss) of the views ``x`` and their adversarial images (ASTrA's reward)."""
        raise NotImplementedError

    def attack(self, x: torch.Tensor, eps, steps, size) -> torch.Tensor:
        """Per-sample PGD on the method's objective for the stacked views ``x``, in eval mode, gradients to the
        input only; ``eps``, ``steps`` and ``size`` are per attacked image."""
        was_training, params = self.training, list(self.parameters())
        flags = [p.requires_grad for p in params]
        self.eval()
        for p in params:
            p.requires_grad_(False)
        try:
            images = self.attack_images(x)
            return per_sample_pgd(self.attack_objective(x), images, eps, steps, size,
                                  embed=lambda z, rows: self.embed_rows(z, rows, len(images)))
        finally:
            for p, flag in zip(params, flags, strict=True):
                p.requires_grad_(flag)
            self.train(was_training)

    def adversarial_views(self, x: torch.Tensor) -> torch.Tensor:
        """One training step's attack: the strategy updates itself (ASTrA), then picks the budgets."""
        self.strategy.before_step(self, x)
        return self.attack(x, *self.strategy.budgets(self.attack_images(x)))

    @property
    def mixed_weight(self) -> float:
        """Weight of the clean ↔ adversarial term (``sim_weight``, else the strategy's default)."""
        return self.cfg.sim_weight if self.cfg.sim_weight is not None else self.strategy.mixed_weight

    @property
    def card_method(self) -> str | None:
        """``astra`` for ACL + ASTrA (the paper's method), ``<method>+astra`` for ASTrA on another method."""
        if self.strategy.card_method is None:
            return None
        return self.strategy.card_method if self.name == "acl" else f"{self.name}+{self.strategy.card_method}"

    def plot_log(self, log_csv: Path, run_dir: Path) -> None:
        self.strategy.plot_log(log_csv, run_dir)

    def epoch_stats(self) -> dict[str, str]:
        """The strategy's per-epoch statistics (ASTrA: action distributions and mean reward)."""
        return self.strategy.epoch_stats()
