"""PGD (Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018).

Random start in the ε-ball, ascent steps on the loss (sign of the gradient for L∞, the gradient normalized to unit
L2 norm for L2), projection onto the ball and the [0,1] box after every step. With several restarts each sample
keeps the first adversarial example found (the worst case per sample).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from ssl_robustbench.attacks.base import ATTACKS, AttackRun, Perturb, ThreatModel


def dlr_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Difference-of-logits-ratio loss (Croce & Hein, ICML 2020, Eq. 5), per sample."""
    srt, _ = logits.sort(dim=1)
    true = logits.gather(1, y[:, None]).squeeze(1)
    top_is_true = (srt[:, -1] == true).float()
    other = srt[:, -2] * top_is_true + srt[:, -1] * (1 - top_is_true)
    return -(true - other) / (srt[:, -1] - srt[:, -3] + 1e-12)


def _random_start(x: torch.Tensor, threat: ThreatModel, g: torch.Generator) -> torch.Tensor:
    noise = torch.rand(x.shape, generator=g, device=x.device) * 2 - 1
    if threat.norm == "L2":
        noise = noise / noise.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
        noise = noise * torch.rand(len(x), 1, 1, 1, generator=g, device=x.device)
    return threat.project(x + noise * threat.eps, x)


def pgd(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, threat: ThreatModel, steps: int = 20,
    step_size: float | None = None, restarts: int = 1, loss: str = "ce", seed: int = 0, amp: bool = False,
) -> torch.Tensor:
    """Runs PGD on a batch.

    Args:
        model: classifier on [0,1] pixels returning logits; must be in eval mode.
        x: [B,3,H,W] clean images in [0,1].
        y: [B] labels.
        threat: norm and ε.
        steps: ascent steps per restart.
        step_size: α; default ε/4 (2/255 at ε=8/255, the PGD-20 of the SSL robustness literature).
        restarts: random restarts; a sample stops at its first success.
        loss: ``ce`` or ``dlr``.
        seed: seed of the random starts.
        amp: bf16 autocast on CUDA for the forward/backward passes.

    Returns:
        [B,3,H,W] adversarial images inside the threat model.
    """
    alpha = threat.eps / 4 if step_size is None else step_size
    loss_fn = {"ce": lambda z, t: F.cross_entropy(z, t, reduction="none"), "dlr": dlr_loss}[loss]
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if amp and x.is_cuda else contextlib.nullcontext()
    g = torch.Generator(device=x.device).manual_seed(seed)
    best = x.clone()
    todo = torch.ones(len(x), dtype=torch.bool, device=x.device)
    for restart in range(restarts):
        idx = todo.nonzero().squeeze(1)
        if len(idx) == 0:
            break
        x0, y0 = x[idx], y[idx]
        adv = _random_start(x0, threat, g)
        if threat.norm == "Linf":  # the ball ∩ [0,1] box as per-pixel bounds: one clamp a step
            lo, hi = (x0 - threat.eps).clamp_(0, 1), (x0 + threat.eps).clamp_(0, 1)
        for _ in range(steps):
            adv.requires_grad_(True)
            with autocast:
                value = loss_fn(model(adv).float(), y0).sum()
            (grad,) = torch.autograd.grad(value, adv)
            with torch.no_grad():
                if threat.norm == "Linf":
                    adv = torch.clamp(torch.add(adv, grad.sign_(), alpha=alpha), lo, hi)
                else:
                    adv = adv + alpha * grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
                    adv = threat.project(adv, x0)
        best[idx] = adv.detach()  # only samples not yet fooled are attacked again
        if restart + 1 < restarts:  # the last restart needs no check: the caller evaluates the result
            with torch.no_grad():
                todo[idx[model(adv).argmax(1) != y0]] = False
    return best


def pgd_attack(model: torch.nn.Module, threat: ThreatModel, *, steps: int = 20, step_size: float | None = None,
               restarts: int = 1, loss: str = "ce", seed: int = 0, amp: bool = False) -> Perturb:
    """A PGD closure over ``model`` and its options."""
    return lambda x, y: pgd(model, x, y, threat=threat, steps=steps, step_size=step_size, restarts=restarts,
                            loss=loss, seed=seed, amp=amp)


@ATTACKS.register("pgd")
def pgd_run(model: torch.nn.Module, threat: ThreatModel, settings, *, num_classes: int, seed: int,
            device: torch.device | str) -> AttackRun:
    """PGD-``settings.pgd_steps`` (Madry et al. 2018) with the suite's step size, restarts, loss and AMP: RA."""
    label = f"pgd{settings.pgd_steps}"
    attack = pgd_attack(model, threat, steps=settings.pgd_steps, step_size=settings.pgd_step_size,
                        restarts=settings.pgd_restarts, loss=settings.pgd_loss, seed=seed, amp=settings.amp)
    return AttackRun(label=label, metric="ra", components=[(label, attack)], version="ssl_robustbench.attacks.pgd")
