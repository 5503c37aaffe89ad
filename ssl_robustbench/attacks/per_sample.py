"""PGD with a budget of its own for every sample, as ASTrA's strategy network assigns them (Chhipa et al., "ASTrA:
Adversarial Self-Supervised Training with Adaptive Attacks", ICLR 2025, following the authors' released code):
random start U(−8/255, 8/255); signed-gradient ascent on a batch loss (an SSL loss such as NT-Xent, so samples
interact); sample i moves by its own step size, is clipped to its own ε (and to the [0, 1] image box) and is frozen
after its own number of steps, while the loop runs to the batch's largest step count.

With ``embed`` (a per-sample encoder: the model in eval mode, so one image's embedding does not depend on the
others), a frozen sample leaves the forward pass: its embedding is computed once, after its last step, and enters
the batch loss as a constant — the same loss and gradients as running every sample to the largest step count, at
the cost of the steps actually taken (ASTrA's step counts spread over 3…14). Each forward pass is padded with frozen
rows to a multiple of ``ROW_BUCKET`` rows: the number of moving samples changes from step to step, and on the CPU
every new batch size builds new oneDNN convolution kernels (1,024 are cached, a network needs a few dozen per size),
which cost ~10 % of ASTrA's attack before; the padding costs ~2 % (``perf/pretrain_throughput.py``)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ssl_robustbench.errors import UserError

START_EPS = 8 / 255
#: forward passes of the ``embed`` form see batch sizes in multiples of this (``_bucketed``)
ROW_BUCKET = 32


def per_sample_pgd(loss_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, eps: torch.Tensor,
                   steps: torch.Tensor, step_size: torch.Tensor, *, generator: torch.Generator | None = None,
                   start_eps: float = START_EPS,
                   embed: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                   row_bucket: int = ROW_BUCKET) -> torch.Tensor:
    """Adversarial examples for ``x`` [B, C, H, W] in [0, 1] maximizing a scalar batch loss.

    Args:
        loss_fn: the loss of the adversarial batch, ``loss_fn(x_adv)``; with ``embed``, of its embeddings,
            ``loss_fn(embed(x_adv, all rows))``.
        eps, step_size: per-sample L∞ budget and step, [B] (in [0, 1] pixel units).
        steps: per-sample number of steps, [B] integers ≥ 0.
        generator: draws the random start.
        embed: ``embed(images, rows)`` → the embeddings of those rows of the batch (``rows`` their indices),
            computed per sample; frozen samples then skip the forward pass.
        row_bucket: with ``embed``, each forward pass is padded with frozen rows to a multiple of this many rows
            (1: no padding), so it sees a few batch sizes only (see ``_bucketed``).
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
        return _per_sample_pgd_skipping_frozen(loss_fn, embed, x, delta, eps_, size_, remaining, row_bucket)
    for _ in range(int(steps.max()) if b else 0):
        active = (remaining >= 1).to(x.dtype).view(view)
        delta.requires_grad_(True)
        grad, = torch.autograd.grad(loss_fn(x + delta), delta)
        with torch.no_grad():
            delta = torch.maximum(torch.minimum(delta + active * size_ * grad.sign(), eps_), -eps_)
            delta = torch.clamp(delta, -x, 1 - x)
        remaining -= 1
    return (x + delta).detach()


def _per_sample_pgd_skipping_frozen(loss_fn, embed, x, delta, eps_, size_, remaining, row_bucket) -> torch.Tensor:
    """The ``embed`` form of ``per_sample_pgd``: each step embeds, with gradients, only the samples with steps left
    (``moving``), plus the frozen samples whose cached embedding is stale (those with no steps at all on the first
    step, then those that have just taken their last step), padded with other frozen samples to a multiple of
    ``row_bucket`` rows; the cached embeddings of the frozen samples enter the batch loss as constants."""
    b = len(x)
    if not b or int(remaining.max()) <= 0:
        return (x + delta).detach()
    still = remaining < 1  # samples without steps still get the loop's clip to ε and the box
    delta[still] = torch.maximum(torch.minimum(delta[still], eps_[still]), -eps_[still]).clamp(-x[still], 1 - x[still])
    cache, stale = None, still.nonzero()[:, 0]
    for _ in range(int(remaining.max())):
        frozen = remaining < 1
        rows = (~frozen).nonzero()[:, 0]
        batch = _bucketed(torch.cat([rows, stale]), frozen, row_bucket)
        moving = delta[rows].requires_grad_(True)
        rest = batch[len(rows):]
        emb = embed(torch.cat([x[rows] + moving, x[rest] + delta[rest]]), batch)
        if cache is None:
            cache = emb.detach().new_zeros((b, *emb.shape[1:]))
        cache[stale] = emb[len(rows):len(rows) + len(stale)].detach()
        grad, = torch.autograd.grad(loss_fn(cache.index_put((rows,), emb[:len(rows)])), moving)
        with torch.no_grad():
            stepped = torch.maximum(torch.minimum(moving + size_[rows] * grad.sign(), eps_[rows]), -eps_[rows])
            delta[rows] = torch.maximum(torch.minimum(stepped, 1 - x[rows]), -x[rows])
            remaining[rows] -= 1
            stale = rows[remaining[rows] == 0]
    return (x + delta).detach()


def _bucketed(batch: torch.Tensor, frozen: torch.Tensor, row_bucket: int) -> torch.Tensor:
    """``batch`` (row indices) followed by other frozen rows up to a multiple of ``row_bucket`` rows (or all rows):
    a forward pass then sees a few batch sizes only, and the CPU's oneDNN kernels (one per shape, 1,024 cached)
    are built once instead of on almost every step."""
    n = -(-len(batch) // row_bucket) * row_bucket
    if n <= len(batch):
        return batch
    free = frozen.clone()
    free[batch] = False
    return torch.cat([batch, free.nonzero()[:n - len(batch), 0]])
