"""PGD with a budget of its own for every sample, as ASTrA's strategy network assigns them (Chhipa et al., "ASTrA:
Adversarial Self-Supervised Training with Adaptive Attacks", ICLR 2025, following the authors' released code):
random start U(−8/255, 8/255); signed-gradient ascent on a batch loss (an SSL loss such as NT-Xent, so samples
interact); sample i moves by its own step size, is clipped to its own ε (and to the [0, 1] image box) and is frozen
after its own number of steps, while the loop runs to the batch's largest step count.

With ``embed`` (a per-sample encoder: the model in eval mode, so one image's embedding does not depend on the
others), a frozen sample leaves the forward pass: its embedding is computed once, after its last step, and enters
the batch loss as a constant — the same loss and gradients as running every sample to the largest step count, at
the cost of the steps actually taken (ASTrA's step counts spread over 3…14)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ssl_robustbench.errors import UserError

START_EPS = 8 / 255


def per_sample_pgd(loss_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, eps: torch.Tensor,
                   steps: torch.Tensor, step_size: torch.Tensor, *, generator: torch.Generator | None = None,
                   start_eps: float = START_EPS,
                   embed: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Adversarial examples for ``x`` [B, C, H, W] in [0, 1] maximizing a scalar batch loss.

    Args:
        loss_fn: the loss of the adversarial batch, ``loss_fn(x_adv)``; with ``embed``, of its embeddings,
            ``loss_fn(embed(x_adv, all rows))``.
        eps, step_size: per-sample L∞ budget and step, [B] (in [0, 1] pixel units).
        steps: per-sample number of steps, [B] integers ≥ 0.
        generator: draws the random start.
        embed: ``embed(images, rows)`` → the embeddings of those rows of the batch (``rows`` their indices),
            computed per sample; frozen samples then skip the forward pass.
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
    if embed is not None:
        return _per_sample_pgd_skipping_frozen(loss_fn, embed, x, delta, eps_, size_, remaining)
    for _ in range(int(steps.max()) if b else 0):
        active = (remaining >= 1).to(x.dtype).view(view)
        delta.requires_grad_(True)
        grad, = torch.autograd.grad(loss_fn(x + delta), delta)
        with torch.no_grad():
            delta = torch.maximum(torch.minimum(delta + active * size_ * grad.sign(), eps_), -eps_)
            delta = torch.clamp(delta, -x, 1 - x)
        remaining -= 1
    return (x + delta).detach()


def _per_sample_pgd_skipping_frozen(loss_fn, embed, x, delta, eps_, size_, remaining) -> torch.Tensor:
    """The ``embed`` form of ``per_sample_pgd``: only samples with steps left are embedded with gradients; the
    others' embeddings are cached constants."""
    cache = None
    if len(x) and int(remaining.max()) > 0:  # samples without steps still get the loop's clip to ε and the box
        still = remaining < 1
        delta[still] = torch.maximum(torch.minimum(delta[still], eps_[still]), -eps_[still]).clamp(
            -x[still], 1 - x[still])
    for _ in range(int(remaining.max()) if len(x) else 0):
        rows = (remaining >= 1).nonzero()[:, 0]
        moving = delta[rows].requires_grad_(True)
        emb = embed(x[rows] + moving, rows)
        if cache is None:  # the first step: samples with no steps at all are embedded once, as constants
            cache = emb.new_zeros((len(x), *emb.shape[1:]))
            still = (remaining < 1).nonzero()[:, 0]
            if len(still):
                with torch.no_grad():
                    cache[still] = embed(x[still] + delta[still], still)
        grad, = torch.autograd.grad(loss_fn(cache.index_put((rows,), emb)), moving)
        with torch.no_grad():
            stepped = torch.maximum(torch.minimum(moving + size_[rows] * grad.sign(), eps_[rows]), -eps_[rows])
            delta[rows] = torch.maximum(torch.minimum(stepped, 1 - x[rows]), -x[rows])
            remaining[rows] -= 1
            done = rows[remaining[rows] == 0]
            if len(done) and int(remaining.max()) > 0:  # their final embedding, for the steps still to come
                cache[done] = embed(x[done] + delta[done], done).to(cache.dtype)
    return (x + delta).detach()
