"""ASTrA's learnable attack strategy (Chhipa et al., "ASTrA: Adversarial Self-Supervised Training with Adaptive
Attacks", ICLR 2025; constants from the authors' released code).

A strategy network looks at each augmented image and chooses, per sample, the attack's ε ∈ {3, …, 15}/255,
number of steps ∈ {3, …, 14} and step size ∈ {1, …, 5}/255 from three categorical heads. It is trained by
REINFORCE: the reward of a batch is (r1·(−L_sim) + r2·L_adv − r3·L_clean) / 3 — published weights r1 = 0,
r2 = r3 = 1 — computed without gradients in eval mode, and the policy loss is −Σ_i log π(a_i | x_i) · reward.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Categorical

EPSILONS = tuple(range(3, 16))      # / 255
STEPS = tuple(range(3, 15))
STEP_SIZES = tuple(range(1, 6))     # / 255


@dataclasses.dataclass(frozen=True)
class Actions:
    """One batch of sampled attack settings and the summed log-probability of each sample's three choices."""

    eps: torch.Tensor        # [B] in [0, 1] pixel units
    steps: torch.Tensor      # [B] integers
    step_size: torch.Tensor  # [B] in [0, 1] pixel units
    log_prob: torch.Tensor   # [B], differentiable w.r.t. the strategy network
    index: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # the chosen category per head


class StrategyNet(nn.Module):
    """A feature extractor (ASTrA: ResNet-18 with the CIFAR stem) and three categorical heads."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        d = backbone.num_features
        self.eps_head, self.steps_head, self.size_head = (nn.Linear(d, len(EPSILONS)), nn.Linear(d, len(STEPS)),
                                                          nn.Linear(d, len(STEP_SIZES)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = self.backbone(x)
        return self.eps_head(f), self.steps_head(f), self.size_head(f)

    def act(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Actions:
        """Samples each image's ε, steps and step size (per sample, from its own logits)."""
        chosen, log_prob = [], 0.0
        for logits in self(x):
            probs = F.softmax(logits, dim=-1)
            index = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            chosen.append(index)
            log_prob = log_prob + Categorical(probs=probs).log_prob(index)
        eps_i, steps_i, size_i = chosen
        dev = x.device
        return Actions(eps=torch.tensor(EPSILONS, device=dev, dtype=x.dtype)[eps_i] / 255,
                       steps=torch.tensor(STEPS, device=dev)[steps_i],
                       step_size=torch.tensor(STEP_SIZES, device=dev, dtype=x.dtype)[size_i] / 255,
                       log_prob=log_prob, index=(eps_i, steps_i, size_i))


def reward(clean_loss: torch.Tensor, adv_loss: torch.Tensor, *, sim_loss: torch.Tensor | None = None,
           r1: float = 0.0, r2: float = 1.0, r3: float = 1.0) -> torch.Tensor:
    """(−r1·L_sim + r2·L_adv − r3·L_clean) / 3: harder attacks (higher adversarial loss) are rewarded."""
    sim = sim_loss if sim_loss is not None and r1 else torch.zeros_like(adv_loss)
    return ((-r1 * sim + r2 * adv_loss - r3 * clean_loss) / 3).detach()


def reinforce_loss(log_prob: torch.Tensor, batch_reward: torch.Tensor) -> torch.Tensor:
    """REINFORCE: −Σ_i log π(a_i | x_i) · reward (one reward per batch, as ASTrA's released code)."""
    return -(log_prob * batch_reward.detach()).sum()
