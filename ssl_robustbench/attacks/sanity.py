"""Signs of gradient masking or a broken model, in the spirit of AutoAttack's checks and RobustBench's
``unreliable`` mark. Each check returns a short flag string when it trips; flagged results get a warning."""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def randomized_forward(model: torch.nn.Module, x: torch.Tensor) -> str | None:
    """Two forward passes of the same batch differ (dropout left on, stochastic defences)."""
    a, b = model(x), model(x)
    return None if torch.allclose(a, b, rtol=1e-4, atol=1e-5, equal_nan=True) else "randomized forward pass"


@torch.no_grad()
def softmax_outputs(model: torch.nn.Module, x: torch.Tensor) -> str | None:
    """The model returns probabilities (non-negative rows summing to 1), not logits."""
    out = model(x).float()
    if not bool(torch.isfinite(out).all()):
        return None
    if out.min() >= 0 and torch.allclose(out.sum(1), torch.ones(len(out), device=out.device), atol=1e-4):
        return "softmax outputs instead of logits"
    return None


def zero_gradients(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> str | None:
    """The cross-entropy's input gradient is exactly zero for some samples."""
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x), y, reduction="sum"), x)
    grad = torch.nan_to_num(grad, nan=1.0)  # NaN gradients are not zero ones (nonfinite_outputs flags them)
    zero = (grad.flatten(1).abs().amax(1) == 0).float().mean().item()
    return f"zero gradients for {zero:.0%} of inputs" if zero > 0 else None


def black_box_beats_white_box(accuracy: dict[str, float]) -> str | None:
    """Square (black-box) still fools points that every gradient attack before it missed."""
    names = list(accuracy)
    if "square" not in names:
        return None
    before = accuracy[names[names.index("square") - 1]]
    return "black-box (Square) beats white-box attacks" if accuracy["square"] < before else None


def pgd_far_above_autoattack(ra: float | None, aa: float | None, *, margin: float = 0.10) -> str | None:
    """PGD-20 leaves far more points robust than AutoAttack (by more than ``margin``, 10 points): on models
    without gradient masking the two differ by a few points (Croce & Hein 2020, Table 2)."""
    if ra is None or aa is None or ra - aa <= margin:
        return None
    return f"PGD-20 accuracy exceeds AutoAttack by {100 * (ra - aa):.1f} points"


def more_steps_help_model(fewer: float, more: float, *, tolerance: float = 0.01) -> str | None:
    """Robust accuracy rises when PGD gets more steps (it should only fall)."""
    return "PGD accuracy rises with more steps" if more > fewer + tolerance else None


@torch.no_grad()
def nonfinite_outputs(model: torch.nn.Module, x: torch.Tensor) -> str | None:
    """The model returns NaN or infinite logits for some images (its accuracy and every attack are meaningless)."""
    bad = int((~torch.isfinite(model(x).float())).any(1).sum())
    return f"non-finite outputs (NaN/Inf) for {bad} of {len(x)} images" if bad else None


def black_box_breaks_pgd(broken: int, total: int, *, margin: float = 0.10) -> str | None:
    """A black-box attack (Square, a few queries) breaks more than ``margin`` of the images white-box PGD left
    robust: PGD's gradients were useless (shattered or obfuscated; Athalye et al. 2018), so RA overstates."""
    if total == 0 or broken <= margin * total:
        return None
    return f"black-box (Square) breaks {broken} of {total} images PGD left robust: gradients may be masked"


@torch.no_grad()
def batch_dependent(model: torch.nn.Module, x: torch.Tensor, *, atol: float = 1e-4) -> str | None:
    """The logits of an image change with the other images in its batch (batch statistics at test time): the
    same inputs, whole and in two halves in reverse order, must give the same logits."""
    if len(x) < 4:
        return None
    whole = model(x).float()
    if not bool(torch.isfinite(whole).all()):
        return None  # nonfinite_outputs says so; no tolerance can be computed from NaN
    half = len(x) // 2
    split = torch.cat([model(x[half:]), model(x[:half])]).float()
    split = torch.cat([split[len(x) - half:], split[:len(x) - half]])
    scale = whole.abs().amax().clamp_min(1.0)
    return "batch-dependent outputs" if not torch.allclose(whole, split, atol=atol * float(scale), rtol=1e-3) else None
