"""Möbius perspective distortion, batched on tensors (MPD: Chhipa et al., "Möbius Transform for Mitigating
Perspective Distortions in Representation Learning", ECCV 2024).

Each output pixel z (normalized coordinates in [-1, 1]², x + iy) samples the input at f(z) = (a z + b) / (c z + d)
with a = 1, b = 0, by bilinear ``grid_sample`` (corner-aligned, as the authors' ``mobius-mpd`` package does). A real
c tilts the view left/right, an imaginary c top/bottom. Background: ``black`` (zeros where f(z) leaves the image)
or ``padded`` (coordinates clamped to the border, so border pixels fill the gap).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ssl_robustbench.errors import UserError
from ssl_robustbench.transforms.augment import AUGMENTATIONS, Augment, on_rows

BACKGROUNDS = ("black", "padded")


def mobius_grid(c_real: torch.Tensor, c_imag: torch.Tensor, d: torch.Tensor | float, height: int, width: int, *,
                padded: bool) -> torch.Tensor:
    """Sampling grid [B, H, W, 2] of f(z) = z / (c z + d) for per-sample c (``c_real``, ``c_imag``: [B])."""
    dev = c_real.device
    y, x = torch.meshgrid(torch.linspace(-1, 1, height, device=dev), torch.linspace(-1, 1, width, device=dev),
                          indexing="ij")
    cr, ci = c_real.view(-1, 1, 1), c_imag.view(-1, 1, 1)
    d = torch.as_tensor(d, dtype=x.dtype, device=dev).view(-1, 1, 1)
    den_real = cr * x - ci * y + d
    den_imag = cr * y + ci * x
    norm = den_real.square() + den_imag.square()
    xt = (x * den_real + y * den_imag) / norm
    yt = (y * den_real - x * den_imag) / norm
    if padded:
        xt, yt = xt.clamp(-1, 1), yt.clamp(-1, 1)
    return torch.stack((xt, yt), dim=-1)


def mobius_warp(x: torch.Tensor, c_real: torch.Tensor, c_imag: torch.Tensor, *, d: torch.Tensor | float = 1.0,
                background: str = "black") -> torch.Tensor:
    """Warps a batch [B,3,H,W] in [0,1] with per-sample Möbius coefficients c (and d)."""
    if background not in BACKGROUNDS:
        raise UserError(f"background must be one of {', '.join(BACKGROUNDS)}, not {background!r}")
    grid = mobius_grid(c_real, c_imag, d, x.shape[-2], x.shape[-1], padded=background == "padded")
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="zeros", align_corners=True)


def draw_c(n: int, *, low: float, high: float, g: torch.Generator, device: torch.device | str = "cpu"
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """MPD's random c: real or imaginary (½ each), random sign, magnitude U(low, high)."""
    magnitude = torch.rand(n, generator=g, device=device) * (high - low) + low
    sign = torch.where(torch.rand(n, generator=g, device=device) < 0.5, -1.0, 1.0)
    real = torch.rand(n, generator=g, device=device) < 0.5
    value = sign * magnitude
    return torch.where(real, value, 0.0), torch.where(real, 0.0, value)


@AUGMENTATIONS.register("mpd")
def mpd(*, p: float = 0.8, low: float = 0.1, high: float = 0.3, d: float = 1.0, background: str = "black") -> Augment:
    """MPD as a batched augmentation: each image is warped with probability ``p`` and its own random c.

    The authors' presets: DINO (after RandomResizedCrop, every crop) d = 1, |c| ~ U(0.1, 0.3), p = 0.8; SimCLR
    (before RandomResizedCrop) d = 0.75, |c| ~ U(0.2, 0.4), p = 0.8.
    """
    if not 0 <= p <= 1 or not 0 < low <= high:
        raise UserError("mpd needs 0 <= p <= 1 and 0 < low <= high")
    if background not in BACKGROUNDS:
        raise UserError(f"background must be one of {', '.join(BACKGROUNDS)}, not {background!r}")

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        c_real, c_imag = draw_c(len(x), low=low, high=high, g=g, device=x.device)
        warp = torch.rand(len(x), generator=g, device=x.device) < p
        return on_rows(x, warp, lambda rows_x, rows: mobius_warp(rows_x, c_real[rows], c_imag[rows], d=d,
                                                                 background=background))

    return apply
