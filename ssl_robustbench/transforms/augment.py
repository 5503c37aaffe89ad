"""Batched SSL augmentations on [B,3,H,W] tensors in [0,1], on the training device, with an explicit generator.

The SimCLR recipe (Chen et al., ICML 2020, Appendix A): RandomResizedCrop + horizontal flip, colour jitter
(brightness, contrast, saturation 0.4, hue 0.1) with p=0.8, grayscale with p=0.2. Each op draws per-sample
parameters, so one call augments the whole batch. Colour-jitter sub-ops run in a fixed order (torchvision permutes
them per image); the distribution of each factor is the same.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ssl_robustbench.registry import Registry

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
#: Factories ``(**kwargs) -> Augment``.
AUGMENTATIONS: Registry[Callable[..., Augment]] = Registry("augmentation")

_GRAY = (0.299, 0.587, 0.114)


def _uniform(n: int, lo: float, hi: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) * (hi - lo) + lo


def on_rows(x: torch.Tensor, chosen: torch.Tensor, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
            ) -> torch.Tensor:
    """``fn(x[rows], rows)`` on the rows of ``x`` where ``chosen`` ([B] bool) holds, the other rows unchanged:
    a per-sample augmentation applied with probability p does only the work of the images it changes."""
    rows = chosen.nonzero().squeeze(1)
    if len(rows) == len(x):
        return fn(x, rows)
    out = x.clone()
    if len(rows):
        out.index_copy_(0, rows, fn(x.index_select(0, rows), rows))
    return out


def gray(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma, [B,1,H,W]."""
    w = x.new_tensor(_GRAY).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


@AUGMENTATIONS.register("random_resized_crop")
def random_resized_crop(*, size: int, scale: tuple[float, float] = (0.2, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3), flip: float = 0.5) -> Augment:
    """RandomResizedCrop + horizontal flip as one affine resampling per image (bilinear, reflection border)."""

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        b, dev = x.shape[0], x.device
        area = _uniform(b, *scale, g, dev)
        r = torch.exp(_uniform(b, math.log(ratio[0]), math.log(ratio[1]), g, dev))
        w = torch.sqrt(area * r).clamp(max=1.0)
        h = torch.sqrt(area / r).clamp(max=1.0)
        cx = (torch.rand(b, generator=g, device=dev) * 2 - 1) * (1 - w)
        cy = (torch.rand(b, generator=g, device=dev) * 2 - 1) * (1 - h)
        sign = torch.where(torch.rand(b, generator=g, device=dev) < flip, -1.0, 1.0)
        theta = torch.zeros(b, 2, 3, device=dev)
        theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w * sign, cx, h, cy
        grid = F.affine_grid(theta, [b, x.shape[1], size, size], align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    return apply


def random_crop_flip(x: torch.Tensor, *, pad: int, flip: bool, g: torch.Generator) -> torch.Tensor:
    """RandomCrop(size, padding=pad, zero fill) + RandomHorizontalFlip, per sample, as one batched gather."""
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=g, device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=g, device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)).view(b, 1, h, 1).expand(b, x.shape[1], h, w + 2 * pad)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w, device=x.device)).view(b, 1, 1, w).expand(b, x.shape[1], h, w)
    out = out.gather(3, cols)
    if flip:
        mirror = torch.rand(b, generator=g, device=x.device) < 0.5
        out = torch.where(mirror.view(b, 1, 1, 1), out.flip(3), out)
    return out


@AUGMENTATIONS.register("padded_crop")
def padded_crop(*, pad: int = 4, flip: bool = True) -> Augment:
    """RandomCrop(size, padding=pad) + horizontal flip at the input's own size (CIFAR's standard augmentation)."""
    return lambda x, g: random_crop_flip(x, pad=pad, flip=flip, g=g)


def _hue_rotate(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotates chroma in YIQ space by ``angle`` radians per image."""
    to_yiq = x.new_tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    from_yiq = torch.linalg.inv(to_yiq)
    c, s = torch.cos(angle), torch.sin(angle)
    rot = torch.zeros(x.shape[0], 3, 3, device=x.device, dtype=x.dtype)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = c, -s, s, c
    m = from_yiq @ rot @ to_yiq  # [B,3,3]
    return torch.einsum("bij,bjhw->bihw", m, x)


@AUGMENTATIONS.register("color_jitter")
def color_jitter(*, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4, hue: float = 0.1,
                 p: float = 0.8) -> Augment:
    """Per-image brightness, contrast, saturation and hue jitter, applied to each image with probability ``p``."""

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        b, dev = x.shape[0], x.device
        fb = _uniform(b, 1 - brightness, 1 + brightness, g, dev).view(b, 1, 1, 1)
        fc = _uniform(b, 1 - contrast, 1 + contrast, g, dev).view(b, 1, 1, 1)
        fs = _uniform(b, 1 - saturation, 1 + saturation, g, dev).view(b, 1, 1, 1)
        fh = _uniform(b, -hue, hue, g, dev) * 2 * math.pi
        apply_mask = (torch.rand(b, generator=g, device=dev) < p).view(b, 1, 1, 1)
        y = (x * fb).clamp(0, 1)
        m = gray(y).mean(dim=(2, 3), keepdim=True)
        y = ((y - m) * fc + m).clamp(0, 1)
        gy = gray(y)
        y = ((y - gy) * fs + gy).clamp(0, 1)
        y = _hue_rotate(y, fh).clamp(0, 1)
        return torch.where(apply_mask, y, x)

    return apply


@AUGMENTATIONS.register("grayscale")
def grayscale(*, p: float = 0.2) -> Augment:
    """Replaces each image by its luma (3 channels) with probability ``p``."""

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        mask = (torch.rand(x.shape[0], generator=g, device=x.device) < p).view(-1, 1, 1, 1)
        return torch.where(mask, gray(x).expand_as(x), x)

    return apply


@dataclasses.dataclass(frozen=True)
class AugmentStep:
    """One registered augmentation and its keyword arguments."""

    name: str
    kwargs: dict = dataclasses.field(default_factory=dict)


def compose(steps: list[AugmentStep]) -> Augment:
    """Builds one batched augmentation from registered steps, applied in order."""
    fns = [AUGMENTATIONS.get(s.name)(**s.kwargs) for s in steps]

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        for fn in fns:
            x = fn(x, g)
        return x

    return apply
