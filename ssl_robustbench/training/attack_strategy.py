"""Attack strategies of adversarial SSL (Self-AT): what picks each sample's PGD budget. One interface, so any
Self-AT method (``methods/acl.py`` and its subclasses) takes ``--strategy fixed|astra`` without branching.

- ``fixed``: one budget for every sample (ε 8/255, 5 steps of 2/255 in ACL), the Self-AT baseline.
- ``astra``: ASTrA (Chhipa et al., ICLR 2025): a strategy network picks each sample's ε / steps / step size from
  its augmented image and is trained by REINFORCE every ``policy_interval`` steps (constants from the authors'
  ``train_simCLR_adaptive_update.py``); the target loss adds the mixed clean ↔ adversarial term (0.5).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ssl_robustbench.backbones import build_backbone
from ssl_robustbench.registry import Registry
from ssl_robustbench.training.astra import EPSILONS, STEP_SIZES, STEPS, StrategyNet, reinforce_loss, reward
from ssl_robustbench.training.optim import LARS
from ssl_robustbench.training.schedule import warmup_cosine

Budgets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # per-sample ε, steps, step size


class AttackStrategy(nn.Module):
    """Picks per-sample attack budgets for a Self-AT method (``methods/self_at.py``: ``method`` gives
    ``attack_images(x)``, ``attack(x, ε, steps, size)``, ``losses(x, adv) -> (clean loss, adversarial loss)``,
    ``progress`` and ``warmup``)."""

    #: the method name result cards record (None: the method's own)
    card_method: str | None = None
    #: default weight of the mixed clean ↔ adversarial term
    mixed_weight: float = 0.0
    #: default hidden width of the projector (None: the encoder's width, as ACL)
    proj_hidden: int | None = None

    def budgets(self, x: torch.Tensor) -> Budgets:
        raise NotImplementedError

    def before_step(self, method: Any, x: torch.Tensor) -> None:
        """Called on every training step before the attack (a learned strategy updates itself here)."""

    def epoch_stats(self) -> dict[str, str]:
        """Per-epoch log columns (default none)."""
        return {}

    def plot_log(self, log_csv: Path, run_dir: Path) -> None:
        """Redraws the strategy's plot after an epoch (default none)."""


STRATEGIES: Registry[Callable[..., AttackStrategy]] = Registry("attack strategy")


@STRATEGIES.register("fixed")
class FixedPGD(AttackStrategy):
    """The same (ε, steps, step size) for every sample."""

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        self.eps, self.steps, self.step_size = cfg.eps, cfg.steps, cfg.step_size

    def budgets(self, x: torch.Tensor) -> Budgets:
        b = len(x)
        return (torch.full((b,), self.eps, device=x.device), torch.full((b,), self.steps, device=x.device),
                torch.full((b,), self.step_size, device=x.device))


@STRATEGIES.register("astra")
class ASTrAPolicy(AttackStrategy):
    """ASTrA's strategy network with its LARS optimizer (ACL's variant; lr ``policy_lr`` warmed up with the encoder,
    then cosine to 1e-6; wd 1e-6; grad clip ``policy_clip``), REINFORCE every ``policy_interval`` steps with reward
    (−r1·L_sim + r2·L_adv − r3·L_clean)/3, and the action distributions it logs per epoch."""

    card_method = "astra"
    mixed_weight = 0.5
    proj_hidden = 2048  # models/resnet_multi_bn_bottleneck.py proj_head: 512 → 2048 → 512 → 512

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        self.cfg = cfg
        self.net = StrategyNet(build_backbone(cfg.strategy_arch))
        self.policy_opt = LARS(self.net.parameters(), lr=cfg.policy_lr, weight_decay=1e-6, variant="acl")
        self.calls = 0
        self.counts = {"eps": torch.zeros(len(EPSILONS)), "steps": torch.zeros(len(STEPS)),
                       "step_size": torch.zeros(len(STEP_SIZES))}
        self.rewards: list[float] = []

    def budgets(self, x: torch.Tensor) -> Budgets:
        with torch.no_grad():
            acts = self.net.eval().act(x)
        for key, idx in zip(("eps", "steps", "step_size"), acts.index, strict=True):
            self.counts[key] += torch.bincount(idx.cpu(), minlength=len(self.counts[key])).float()
        return acts.eps, acts.steps, acts.step_size

    def before_step(self, method: Any, x: torch.Tensor) -> None:
        if not method.training:
            return
        self.calls += 1
        if self.calls % self.cfg.policy_interval:
            return
        c = self.cfg
        self.net.train()
        acts = self.net.act(method.attack_images(x))
        adv = method.attack(x, acts.eps.detach(), acts.steps, acts.step_size.detach())
        method.eval()
        with torch.no_grad():
            clean_loss, adv_loss = method.losses(x, adv)
        method.train()
        r = reward(clean_loss, adv_loss, r1=c.r1, r2=c.r2, r3=c.r3)
        self.rewards.append(float(r))
        lr = warmup_cosine(round(method.progress * 10**6), total=10**6, warmup=round(method.warmup * 10**6),
                           base=c.policy_lr, final=1e-6)
        for group in self.policy_opt.param_groups:
            group["lr"] = lr
        self.policy_opt.zero_grad(set_to_none=True)
        reinforce_loss(acts.log_prob, r).backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), c.policy_clip)
        self.policy_opt.step()
        self.net.zero_grad(set_to_none=True)

    def get_extra_state(self) -> dict:
        """Saved with the model's state_dict, so a resumed run keeps the policy optimizer and update phase."""
        return {"calls": self.calls, "policy_opt": self.policy_opt.state_dict()}

    def set_extra_state(self, state: dict) -> None:
        self.calls = int(state["calls"])
        self.policy_opt.load_state_dict(state["policy_opt"])

    def epoch_stats(self) -> dict[str, str]:
        out = {}
        for key, values in (("eps", EPSILONS), ("steps", STEPS), ("step_size", STEP_SIZES)):
            counts = self.counts[key]
            total = float(counts.sum()) or 1.0
            out[f"{key}_mean"] = f"{sum(v * float(n) for v, n in zip(values, counts, strict=True)) / total:.3f}"
            out[f"{key}_dist"] = " ".join(f"{float(n) / total:.3f}" for n in counts)
            counts.zero_()
        out["reward"] = f"{sum(self.rewards) / len(self.rewards):.5f}" if self.rewards else ""
        self.rewards.clear()
        return out

    def plot_log(self, log_csv: Path, run_dir: Path) -> None:
        from ssl_robustbench.training.policy_plot import plot_policy

        plot_policy(log_csv, run_dir / "policy.png")
