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
from ssl_robustbench.transforms.augment import AUGMENTATIONS, Augment, on_rows
from ssl_robustbench.transforms.mobius import BACKGROUNDS


def lcm_grid(lam_real: torch.Tensor, lam_imag: torch.Tensor, height: int, width: int, *,
             zoom: torch.Tensor | float = 1.0, rotation: torch.Tensor | float = 0.0, padded: bool) -> torch.Tensor:
    """Sampling grid [B, H, W, 2] of z(w) = (exp(λ w) − 1) / (λ r e^{iθ}) for per-sample λ (``lam_*``: [B]).

    In real arithmetic: with λw = u + iv, exp(λw) − 1 = (eᵘ cos v − 1) + i eᵘ sin v, times the per-sample constant
    κ = 1 / (λ r e^{iθ}) (for |λ| < 1e-6, where the quotient loses its digits: z = w / (r e^{iθ}), the limit)."""
    dev = lam_real.device
    y = torch.linspace(-1, 1, height, device=dev).view(1, -1, 1)
    x = torch.linspace(-1, 1, width, device=dev).view(1, 1, -1)
    a, b = lam_real.float().view(-1, 1, 1), lam_imag.float().view(-1, 1, 1)
    zoom_t = torch.as_tensor(zoom, dtype=torch.float32, device=dev).view(-1, 1, 1)
    rot_t = torch.as_tensor(rotation, dtype=torch.float32, device=dev).view(-1, 1, 1)
    small = torch.hypot(a, b) < 1e-6
    lam = torch.complex(torch.where(small, torch.ones_like(a), a), torch.where(small, torch.zeros_like(b), b))
    similarity = torch.polar(zoom_t, rot_t)  # r e^{iθ}
    kappa = 1 / (lam * similarity)
    e = torch.exp(a * x - b * y)
    v = a * y + b * x
    re, im = e * torch.cos(v) - 1, e * torch.sin(v)
    xt = re * kappa.real - im * kappa.imag
    yt = re * kappa.imag + im * kappa.real
    limit = 1 / similarity  # always blended in, with no host sync (the grid may live on any device)
    xt = torch.where(small, x * limit.real - y * limit.imag, xt)
    yt = torch.where(small, x * limit.imag + y * limit.real, yt)
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
        warp = torch.rand(n, generator=g, device=dev) < p
        lam_real, lam_imag = magnitude * torch.cos(angle), magnitude * torch.sin(angle)
        return on_rows(x, warp, lambda rows_x, rows: lcm_warp(rows_x, lam_real[rows], lam_imag[rows], zoom=r[rows],
                                                              rotation=theta[rows], background=background))

    return apply
