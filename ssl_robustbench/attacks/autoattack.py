"""AutoAttack (Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020) through the attack code of the ``pyautoattack`` package.

Our runner cascades the component attacks itself (so it can save per-sample progress and resume), calling each
component exactly as ``AutoAttack.run_standard_evaluation`` does — same objects, same seeds, same batches of the
points still robust — so the robust accuracy equals the package's own run.
"""

from __future__ import annotations

import logging

import torch

from ssl_robustbench.attacks.base import ATTACKS, AttackRun, Perturb, ThreatModel
from ssl_robustbench.errors import UserError

VERSIONS = ("standard", "plus", "rand")


def build_autoattack(model: torch.nn.Module, threat: ThreatModel, *, version: str = "standard", num_classes: int,
                     seed: int = 0, device: torch.device | str = "cpu"):
    """A configured ``pyautoattack.AutoAttack``; target classes are capped at ``num_classes - 1``."""
    from pyautoattack import AutoAttack

    if version not in VERSIONS:
        raise UserError(f"AutoAttack version must be one of {', '.join(VERSIONS)}, not {version!r}")
    if num_classes < 2:
        raise UserError("AutoAttack needs at least 2 classes")
    logging.getLogger("auto-attack").setLevel(logging.WARNING)
    aa = AutoAttack(model, norm=threat.norm, eps=threat.eps, version=version, seed=seed, device=device)
    targets = min(aa.apgd_targeted.n_target_classes, num_classes - 1)
    aa.apgd_targeted.n_target_classes = targets
    aa.fab.n_target_classes = targets
    return aa


def components(aa) -> list[tuple[str, Perturb]]:
    """The version's attacks in order, each a ``perturb(x, y)`` set up as ``run_standard_evaluation`` does."""

    def make(name: str) -> Perturb:
        def perturb(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if name in ("apgd-ce", "apgd-dlr"):
                aa.apgd.loss = name.removeprefix("apgd-")
                aa.apgd.seed = aa.get_seed()
                return aa.apgd.perturb(x, y)
            if name in ("fab", "fab-t"):
                aa.fab.targeted = name == "fab-t"
                if name == "fab-t":
                    aa.fab.n_restarts = 1
                aa.fab.seed = aa.get_seed()
                return aa.fab.perturb(x, y)
            if name == "square":
                aa.square.seed = aa.get_seed()
                return aa.square.perturb(x, y)
            if name == "apgd-t":
                aa.apgd_targeted.seed = aa.get_seed()
                return aa.apgd_targeted.perturb(x, y)
            raise UserError(f"unknown AutoAttack component {name!r}")

        return perturb

    return [(name, make(name)) for name in aa.attacks_to_run]


def autoattack_components(model: torch.nn.Module, threat: ThreatModel, *, version: str = "standard",
                          num_classes: int, seed: int = 0, device: torch.device | str = "cpu"):
    """The list of (name, perturb) components of AutoAttack ``version``, for the cascade runner."""
    return components(build_autoattack(model, threat, version=version, num_classes=num_classes, seed=seed,
                                       device=device))


@ATTACKS.register("autoattack")
def autoattack_run(model: torch.nn.Module, threat: ThreatModel, settings, *, num_classes: int, seed: int,
                   device: torch.device | str) -> AttackRun:
    """AutoAttack ``settings.autoattack`` (Croce & Hein 2020, the ``pyautoattack`` package): AA."""
    from importlib.metadata import version as package_version

    return AttackRun(label=f"autoattack-{settings.autoattack}", metric="aa",
                     components=autoattack_components(model, threat, version=settings.autoattack,
                                                      num_classes=num_classes, seed=seed, device=device),
                     version=f"pyautoattack {package_version('pyautoattack')}")
