"""Threat models and the attack registry."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from fractions import Fraction

import torch

from ssl_robustbench.errors import UserError
from ssl_robustbench.registry import Registry

NORMS = ("Linf", "L2")

#: An attack maps (x [B,3,H,W] in [0,1], y [B]) to adversarial x in [0,1] inside the threat model's ball.
Perturb = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclasses.dataclass(frozen=True)
class AttackRun:
    """One registered attack, ready for the cascade runner: ``label`` names its row (``pgd20``,
    ``autoattack-standard``), ``metric`` the summary it fills (``ra``, ``aa``), ``components`` the (name, perturb)
    steps run in sequence on the points still robust, ``version`` the implementation it comes from."""

    label: str
    metric: str
    components: list[tuple[str, Perturb]]
    version: str = ""


#: Attacks by name, as listed in the adversarial suite's ``adv.attacks``: factories
#: ``(model, threat, settings, *, num_classes, seed, device) -> AttackRun`` (``settings``: the suite's section).
#: Adding an attack is one file that registers one factory.
ATTACKS: Registry[Callable[..., AttackRun]] = Registry("attack")


@dataclasses.dataclass(frozen=True)
class ThreatModel:
    """An ε-ball in ``norm`` around each clean image, intersected with the [0,1] box."""

    norm: str
    eps: float

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise UserError(f"norm must be one of {', '.join(NORMS)}, not {self.norm!r}")
        if not self.eps > 0:
            raise UserError(f"eps must be > 0, got {self.eps}")

    @property
    def label(self) -> str:
        """``Linf eps=8/255`` (a fraction of 255 when it is one, else the decimal)."""
        frac = Fraction(self.eps).limit_denominator(255)
        eps = f"{frac.numerator * 255 // frac.denominator}/255" if 255 % frac.denominator == 0 and abs(
            float(frac) - self.eps) < 1e-9 else f"{self.eps:g}"
        return f"{self.norm} eps={eps}"

    def project(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Projects ``x_adv`` onto the ball around ``x`` and clamps to [0, 1]."""
        delta = x_adv - x
        if self.norm == "Linf":
            delta = delta.clamp(-self.eps, self.eps)
        else:
            norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
            delta = delta * (self.eps / norms).clamp(max=1.0)
        return (x + delta).clamp(0, 1)


#: RobustBench's threat models: (norm, CIFAR-size inputs up to 96 px) -> ε, and for ImageNet-size inputs.
DEFAULT_EPS = {("Linf", True): 8 / 255, ("Linf", False): 4 / 255, ("L2", True): 0.5, ("L2", False): 3.0}


def default_eps(input_size: int, norm: str = "Linf") -> float:
    """RobustBench's budget for ``norm`` at this input size: L∞ 8/255 (up to 96 px: CIFAR, STL-10, the embedded
    set) or 4/255 (ImageNet-size); L2 0.5 or 3.0."""
    if norm not in NORMS:
        raise UserError(f"norm must be one of {', '.join(NORMS)}, not {norm!r}")
    return DEFAULT_EPS[norm, input_size <= 96]


def train_mode_modules(model: torch.nn.Module) -> list[str]:
    """Names of the modules of ``model`` left in train mode (a BatchNorm inside an eval-mode wrapper counts)."""
    return [name or type(model).__name__ for name, m in model.named_modules() if m.training]


def require_eval_mode(model: torch.nn.Module) -> None:
    """Refuses a model with any module in train mode: attacks must see the model as it is evaluated."""
    in_train = train_mode_modules(model)
    if in_train:
        raise UserError(f"the model is in train mode ({', '.join(in_train[:3])}): attacks must run in eval mode, "
                        "every submodule included (call model.eval())")
