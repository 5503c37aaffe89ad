"""Log-conformal maps, batched on tensors (LCM: "Log Conformal Maps for Robust Representation Learning to Mitigate
Perspective Distortion", ACCV 2024). No official code is published; this is our parametrization.

The view samples the input at z = Ψ⁻¹(w) for every output pixel w (normalized coordinates in [-1, 1]², x + iy),
with Ψ(z) = log(k z + c) / λ and c = 1, k = λ·r·e^{iθ}, i.e.

    z(w) = (exp(λ w) − 1) / (λ r e^{iθ})

The complex λ sets the curvature: as λ → 0 the map tends to the similarity w / (r e^{iθ}); a larger |λ| bends
straight lines into log-spiral arcs and compresses one side of the image while stretching the other (the side set
by arg λ), a conformal stand-in for a perspective change. r (zoom) and θ (rotation) default to 1 and 0.
Bilinear ``grid_sample``; background ``black`` (zeros outside) or ``padded`` (border pixels), as MPD.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ssl_robustbench.errors import UserError
from ssl_robustbench.transforms.augment import AUGMENTATIONS, Augment
from ssl_robustbench.transforms.mobius import BACKGROUNDS


def lcm_grid(lam_real: torch.Tensor, lam_imag: torch.Tensor, height: int, width: int, *,
             zoom: torch.Tensor | float = 1.0, rotation: torch.Tensor | float = 0.0, padded: bool) -> torch.Tensor:
    """Sampling grid [B, H, W, 2] of z(w) = (exp(λ w) − 1) / (λ r e^{iθ}) for per-sample λ (``lam_*``: [B])."""
    dev = lam_real.device
    y, x = torch.meshgrid(torch.linspace(-1, 1, height, device=dev), torch.linspace(-1, 1, width, device=dev),
                          indexing="ij")
    w = torch.complex(x, y).unsqueeze(0)
    lam = torch.complex(lam_real, lam_imag).view(-1, 1, 1)
    small = lam.abs() < 1e-6
    lam_safe = torch.where(small, torch.ones_like(lam), lam)
    z = torch.where(small, w, (torch.exp(lam_safe * w) - 1) / lam_safe)
    zoom_t = torch.as_tensor(zoom, dtype=x.dtype, device=dev).view(-1, 1, 1)
    rot_t = torch.as_tensor(rotation, dtype=x.dtype, device=dev).view(-1, 1, 1)
    z = z / torch.polar(zoom_t, rot_t)
    xt, yt = z.real, z.imag
    if padded:
        xt, yt = xt.clamp(-1, 1), yt.clamp(-1, 1)
    return torch.stack((xt, yt), dim=-1)


def lcm_warp(x: torch.Tensor, lam_real: torch.Tensor, lam_imag: torch.Tensor, *, zoom: torch.Tensor | float = 1.0,
             rotation: torch.Tensor | float = 0.0, background: str = "black") -> torch.Tensor:
    """Warps a batch [B,3,H,W] in [0,1] with per-sample λ (and optional zoom r, rotation θ)."""
    if background not in BACKGROUNDS:
        raise UserError(f"background must be one of {', '.join(BACKGROUNDS)}, not {background!r}")
    grid = lcm_grid(lam_real, lam_imag, x.shape[-2], x.shape[-1], zoom=zoom, rotation=rotation,
                    padded=background == "padded")
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="zeros", align_corners=True)


@AUGMENTATIONS.register("lcm")
def lcm(*, p: float = 0.8, low: float = 0.3, high: float = 0.8, zoom: tuple[float, float] = (1.0, 1.0),
        rotation: float = 0.0, background: str = "black") -> Augment:
    """LCM as a batched augmentation: with probability ``p`` each image gets |λ| ~ U(low, high) with a uniform
    random direction arg λ, zoom r ~ U(zoom) and rotation θ ~ U(−rotation, rotation) (radians)."""
    if not 0 <= p <= 1 or not 0 <= low <= high or zoom[0] <= 0 or zoom[0] > zoom[1]:
        raise UserError("lcm needs 0 <= p <= 1, 0 <= low <= high and 0 < zoom[0] <= zoom[1]")
    if background not in BACKGROUNDS:
        raise UserError(f"background must be one of {', '.join(BACKGROUNDS)}, not {background!r}")

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        n, dev = len(x), x.device
        magnitude = torch.rand(n, generator=g, device=dev) * (high - low) + low
        angle = torch.rand(n, generator=g, device=dev) * 2 * math.pi
        r = torch.rand(n, generator=g, device=dev) * (zoom[1] - zoom[0]) + zoom[0]
        theta = (torch.rand(n, generator=g, device=dev) * 2 - 1) * rotation
        keep = torch.rand(n, generator=g, device=dev) >= p
        warped = lcm_warp(x, magnitude * torch.cos(angle), magnitude * torch.sin(angle), zoom=r, rotation=theta,
                          background=background)
        return torch.where(keep.view(-1, 1, 1, 1), x, warped)

    return apply
