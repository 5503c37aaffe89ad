"""PGD with a budget of its own for every sample, as ASTrA's strategy network assigns them (Chhipa et al., "ASTrA:
Adversarial Self-Supervised Training with Adaptive Attacks", ICLR 2025, following the authors' released code):
random start U(−8/255, 8/255); signed-gradient ascent on a batch loss (an SSL loss such as NT-Xent, so samples
interact); sample i moves by its own step size, is clipped to its own ε (and to the [0, 1] image box) and is frozen
after its own number of steps, while the loop runs to the batch's largest step count."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ssl_robustbench.errors import UserError

START_EPS = 8 / 255


def per_sample_pgd(loss_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, eps: torch.Tensor,
                   steps: torch.Tensor, step_size: torch.Tensor, *, generator: torch.Generator | None = None,
                   start_eps: float = START_EPS) -> torch.Tensor:
    """Adversarial examples for ``x`` [B, C, H, W] in [0, 1] maximizing ``loss_fn(x_adv)`` (a scalar).

    Args:
        eps, step_size: per-sample L∞ budget and step, [B] (in [0, 1] pixel units).
        steps: per-sample number of steps, [B] integers ≥ 0.
        generator: draws the random start.
    """
    b = len(x)
    if not (eps.shape == steps.shape == step_size.shape == (b,)):
        raise UserError("per-sample eps, steps and step_size must each have one value per image")
    if (eps < 0).any() or (steps < 0).any() or (step_size < 0).any():
        raise UserError("per-sample eps, steps and step_size must be ≥ 0")
    view = (b,) + (1,) * (x.dim() - 1)
    eps_, size_ = eps.to(x).view(view), step_size.to(x).view(view)
    delta = (torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1) * start_eps
    remaining = steps.to(x.device).long().clone()
    for _ in range(int(steps.max()) if b else 0):
        active = (remaining >= 1).to(x.dtype).view(view)
        delta.requires_grad_(True)
        grad, = torch.autograd.grad(loss_fn(x + delta), delta)
        with torch.no_grad():
            delta = torch.maximum(torch.minimum(delta + active * size_ * grad.sign(), eps_), -eps_)
            delta = torch.clamp(delta, -x, 1 - x)
        remaining -= 1
    return (x + delta).detach()
