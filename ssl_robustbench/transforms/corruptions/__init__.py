"""ImageNet-C corruptions as one batched engine on tensors (Hendrycks & Dietterich, "Benchmarking Neural Network
Robustness to Common Corruptions and Perturbations", ICLR 2019).

``corrupt(x, name, severity, generator=g)`` takes [B, 3, H, W] in [0, 1] on any device (rounded to the uint8
grid first: the reference only takes uint8 images) and returns the corrupted batch on the uint8 grid, truncated
as the reference's ``np.uint8`` does. ``faithful=True`` (default) ends as the released dataset of the table was
stored: the JPEG (quality 85) round trip every released ImageNet-C image went through on the ``imagenet`` table;
nothing on the ``cifar`` table (CIFAR-10-C is stored as uint8 arrays). ``faithful=False`` leaves the JPEG step
out (not the released protocol: mCE's AlexNet errors were measured on the JPEGs).

``reference``: ``hendrycks`` (default) follows ``make_imagenet_c.py``, the script that made the released dataset
(ImageMagick motion blur and snow, its elastic constants with a random affine, frost textures as stored, box
upscaling in pixelate); ``imagecorruptions`` follows that package (Michaelis et al., 2019), which departs from the
script in those five corruptions.

Constants per image size (``table_for``): sides ≥ 100 pixels use the ImageNet-C table, smaller ones the
CIFAR-10-C table (its constants were set for 32² images; Tiny-ImageNet's 64² images are closer to CIFAR's scale
than to ImageNet's). ``table=`` forces one.
"""

from __future__ import annotations

import torch

from ssl_robustbench.errors import UserError
from ssl_robustbench.transforms.corruptions import effects
from ssl_robustbench.transforms.corruptions.effects import Draws
from ssl_robustbench.transforms.corruptions.ops import jpeg_roundtrip_uint8, map_images
from ssl_robustbench.transforms.corruptions.params import IMAGECORRUPTIONS, PARAMS

GROUPS = {
    "noise": ["gaussian_noise", "shot_noise", "impulse_noise"],
    "blur": ["defocus_blur", "glass_blur", "motion_blur", "zoom_blur"],
    "weather": ["snow", "frost", "fog", "brightness"],
    "digital": ["contrast", "elastic_transform", "pixelate", "jpeg_compression"],
    "extra": ["speckle_noise", "gaussian_blur", "spatter", "saturate"],
}
BENCHMARK_CORRUPTIONS = [n for g in ("noise", "blur", "weather", "digital") for n in GROUPS[g]]
EXTRA_CORRUPTIONS = GROUPS["extra"]
ALL_CORRUPTIONS = BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS
TABLES = ("imagenet", "cifar")
REFERENCES = ("hendrycks", "imagecorruptions")
SEVERITIES = (1, 2, 3, 4, 5)
RELEASED_JPEG_QUALITY = 85
CHUNK_PIXELS = 8 * 224 * 224
ON_GRID = {"pixelate", "jpeg_compression", "frost"}  # their outputs are uint8 images already


def table_for(height: int, width: int, table: str = "auto") -> str:
    """Which published constants an image size uses: ``imagenet`` for sides ≥ 100, else ``cifar``."""
    if table == "auto":
        return "imagenet" if min(height, width) >= 100 else "cifar"
    if table not in TABLES:
        raise UserError(f"corruption table must be auto, {' or '.join(TABLES)}, not {table!r}")
    return table


def corruption_names(names: tuple[str, ...] | list[str] = (), *, extra: bool = False) -> list[str]:
    """The corruptions to run: ``names``, or the 15 benchmark ones, plus the 4 held-out ones with ``extra``."""
    chosen = list(names) or list(BENCHMARK_CORRUPTIONS)
    return chosen + [n for n in EXTRA_CORRUPTIONS if extra and n not in chosen]


def group_of(name: str) -> str:
    """The ImageNet-C group (noise, blur, weather, digital, extra) of a corruption."""
    return next(g for g, names in GROUPS.items() if name in names)


def released_jpeg_quality(table: str) -> int | None:
    """The JPEG quality the released dataset of a table was saved at: 85 for ImageNet-C
    (``make_imagenet_c.py``), None for CIFAR-10-C (``make_cifar_c.py`` stores uint8 arrays)."""
    return RELEASED_JPEG_QUALITY if table == "imagenet" else None


def check_reference(reference: str) -> str:
    """Raises UserError for a reference other than hendrycks or imagecorruptions."""
    if reference not in REFERENCES:
        raise UserError(f"corruption reference must be {' or '.join(REFERENCES)}, not {reference!r}")
    return reference


def constants(name: str, severity: int, table: str, reference: str = "hendrycks"):
    """The published constants of one corruption × severity for a table and a reference."""
    if reference == "imagecorruptions" and table == "imagenet" and name in IMAGECORRUPTIONS:
        return IMAGECORRUPTIONS[name][severity - 1]
    return PARAMS[name][table][severity - 1]


def check(name: str, severity: int) -> None:
    """Raises UserError for an unknown corruption or a severity outside 1–5."""
    if name not in PARAMS:
        raise UserError(f"unknown corruption {name!r}; known: {', '.join(ALL_CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise UserError(f"corruption severity must be 1–5, not {severity}")


def corrupt(x: torch.Tensor, name: str, severity: int, *, generator: torch.Generator | None = None,
            table: str = "auto", faithful: bool = True, reference: str = "hendrycks", draws: Draws | None = None,
            chunk: int | None = None) -> torch.Tensor:
    """Corrupts a batch [B, 3, H, W] in [0, 1]; returns float [0, 1] on the uint8 grid (same device).

    On the CPU the batch is processed ``chunk`` images at a time (default: about 400k pixels, 8 images of 224²):
    every step then works in cache, 2–3× faster than whole-batch passes. Random draws are made per chunk, so a
    seed gives the same result for the same chunk size. On the CPU, ``effects.PER_IMAGE_CPU`` (defocus blur,
    pixelate, JPEG compression) run as the reference's own library call per image instead."""
    check(name, severity)
    if x.ndim != 4 or x.shape[1] != 3:
        raise UserError(f"corrupt expects a [B, 3, H, W] batch, got {tuple(x.shape)}")
    if min(x.shape[-2:]) < 32:
        raise UserError(f"ImageNet-C corruptions need images of at least 32×32 pixels, got {tuple(x.shape[-2:])}")
    table = table_for(x.shape[-2], x.shape[-1], table)
    params = constants(name, severity, table, check_reference(reference))
    quality = released_jpeg_quality(table) if faithful else None
    rnd = draws if draws is not None else Draws(generator, x.device)
    if chunk is None:
        pixels = x.shape[-1] * x.shape[-2]
        chunk = max(1, CHUNK_PIXELS // pixels) if x.device.type == "cpu" and draws is None else len(x)
    per_image = effects.PER_IMAGE_CPU.get(name) if x.device.type == "cpu" else None
    if per_image is not None:  # the reference's own library call on each uint8 image, threaded
        return map_images(x, per_image(params), quality)
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    variants = effects.IMAGECORRUPTIONS if reference == "imagecorruptions" else {}
    effect = variants.get(name) or getattr(effects, name)
    for start in range(0, len(x), max(chunk, 1)):
        part = x[start:start + chunk]
        # the reference takes uint8 images: start from the uint8 grid
        y = effect(torch.round(part.float() * 255).div_(255), params, rnd)
        if name in ON_GRID:
            levels = y.mul(255).round_()
        else:  # to the uint8 grid by truncation, as np.uint8 does (float32 paths get a 1e-4 margin for rounding)
            levels = y.clamp_(0, 1).mul_(255).add_(0 if y.dtype == torch.float64 else 1e-4).floor_()
        if quality is not None:
            levels = jpeg_roundtrip_uint8(levels.to(torch.uint8).cpu(), quality).to(x.device)
        out[start:start + chunk] = levels
    return out.div_(255)
