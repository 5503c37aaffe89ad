"""Adversarial attacks on [0,1]-pixel classifiers: PGD (ours), AutoAttack (pyautoattack), a resumable cascade
runner and sanity checks for gradient masking."""

from ssl_robustbench.attacks import autoattack, pgd  # noqa: F401  (registers)
from ssl_robustbench.attacks.base import ATTACKS, ThreatModel

__all__ = ["ATTACKS", "ThreatModel"]
