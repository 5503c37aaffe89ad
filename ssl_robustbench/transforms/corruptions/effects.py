"""The 19 ImageNet-C corruptions (Hendrycks & Dietterich, ICLR 2019), batched: each takes x [B, 3, H, W] in
[0, 1], its severity's constants ``p`` (``params.py``) and a ``Draws`` source of randomness, and returns the
corrupted batch (clipped to [0, 1] by the caller). Algorithms follow Hendrycks' ``make_imagenet_c.py`` (the script
that made the released dataset: ImageMagick motion blur, through Wand) step by step; ``IMAGECORRUPTIONS`` holds the
effects where the ``imagecorruptions`` package computes differently. Random numbers are drawn batched, in the
reference's order, so a test can replay the same draws into either reference.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ssl_robustbench.errors import UserError
from ssl_robustbench.transforms.corruptions import ops


class Draws:
    """Batched random numbers from one torch generator (``None``: the global one)."""

    def __init__(self, generator: torch.Generator | None, device: torch.device):
        self.g, self.device = generator, device

    def normal(self, shape: tuple, loc: float, scale: float) -> torch.Tensor:
        return torch.randn(shape, generator=self.g, device=self.device) * scale + loc

    def uniform(self, shape: tuple, low: float, high: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.rand(shape, generator=self.g, device=self.device, dtype=dtype) * (high - low) + low

    def randint(self, shape: tuple, low: int, high: int | torch.Tensor) -> torch.Tensor:
        """Integers in [low, high); ``high`` may be a tensor of per-image bounds."""
        span = torch.as_tensor(high, device=self.device) - low
        dtype = torch.float32 if int(span.max()) < 1 << 16 else torch.float64
        return (torch.rand(shape, generator=self.g, device=self.device, dtype=dtype) * span).long() + low

    def random(self, shape: tuple) -> torch.Tensor:
        return torch.rand(shape, generator=self.g, device=self.device)


def gaussian_noise(x, c, rnd):
    return x + rnd.normal(tuple(x.shape), 0.0, c)


def shot_noise(x, c, rnd):
    levels = _levels(x)
    cdf, guide = _poisson_tables(float(c))
    cdf, guide, buckets, n = cdf.to(x.device), guide.to(x.device), guide.numel() // 256, cdf.numel() // 256
    u = rnd.random(tuple(x.shape)).reshape(-1)
    row = levels.long().reshape(-1)
    count = guide[row * buckets + (u * buckets).long().clamp_(max=buckets - 1)]
    row *= n
    step = cdf[row + count] <= u
    count += step
    active = step.nonzero().squeeze(1)
    while len(active):  # after the first pass only the few values still searching are touched
        step = cdf[row[active] + count[active]] <= u[active]
        active = active[step]
        count[active] += 1
    return count.view(x.shape).float() / c


@functools.lru_cache(maxsize=32)
def _poisson_tables(c: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Poisson(level / 255 · c) by inverse CDF: on the uint8 grid there are only 256 rates, so one CDF table
    (flattened [256 · K]) and a guide table (first k with CDF > j / M, flattened [256 · M]) give each value's
    answer after a step or two of search."""
    rates = torch.arange(256, dtype=torch.float64) / 255 * c
    k = torch.arange(int(c + 12 * c**0.5 + 20), dtype=torch.float64)
    log_pmf = k * torch.log(rates.clamp(min=1e-300)).unsqueeze(1) - rates.unsqueeze(1) - torch.lgamma(k + 1)
    cdf = torch.exp(log_pmf).cumsum(1).clamp(max=1.0)
    cdf[0], cdf[:, -1] = 1.0, 1.0  # rate 0 always gives 0; the table's end closes every search
    buckets = 4 * len(k)
    guide = torch.searchsorted(cdf, (torch.arange(buckets, dtype=torch.float64) / buckets).expand(256, -1)
                               .contiguous(), right=True)
    return cdf.float().reshape(-1), guide.reshape(-1)


def _levels(x: torch.Tensor) -> torch.Tensor:
    """x · 255 as exact integers (``corrupt`` hands every corruption an image on the uint8 grid)."""
    return torch.round(x * 255)


def impulse_noise(x, c, rnd):
    # scikit-image's salt & pepper: a fraction c of the values flipped, half of them to 1 (one uniform draw)
    u = rnd.random(tuple(x.shape))
    return torch.where(u <= c, (u <= c / 2).to(x.dtype), x)


def speckle_noise(x, c, rnd):
    return x + x * rnd.normal(tuple(x.shape), 0.0, c)


def gaussian_blur(x, c, rnd):
    return ops.gaussian_blur(x, c)


def glass_blur(x, p, rnd):
    sigma, delta, iterations = p
    # the reference truncates a float64 blur to uint8 here: so do we (in float32, 3.5 % of values moved a level)
    x8 = (torch.floor(ops.gaussian_blur(_float64(x), sigma) * 255) / 255).to(x.dtype)
    for _ in range(iterations):
        x8 = _local_shuffle(x8, delta, rnd)
    return ops.gaussian_blur(x8, sigma)


def _local_shuffle(x: torch.Tensor, delta: int, rnd: Draws) -> torch.Tensor:
    """Glass blur's pixel shuffle. The reference visits interior pixels p in descending raster order and runs
    ``x[p], x[q] = x[q], x[p]`` with q = p + U{-δ..δ-1}²; on numpy views that statement copies x[q] into x[p]
    and leaves x[q] as it was. So p ends with the value q had when p was visited: q's own final value if q was
    visited before (an interior pixel after p in raster order), else q's original. We resolve those chains for
    all pixels at once by pointer jumping (log₂ of the longest chain rounds of ``gather``), exact for the same
    draws."""
    b, ch, h, w = x.shape
    dev = x.device
    rows = torch.arange(h - delta, delta, -1, device=dev)
    cols = torch.arange(w - delta, delta, -1, device=dev)
    if len(rows) == 0 or len(cols) == 0:
        return x
    visited = (rows.view(-1, 1) * w + cols.view(1, -1)).reshape(-1)
    offsets = rnd.randint((b, len(visited), 2), -delta, delta)  # (dx, dy) per visited pixel, in visiting order
    source = visited + offsets[..., 1] * w + offsets[..., 0]
    interior = torch.zeros(h * w, dtype=torch.bool, device=dev)
    interior[visited] = True
    pointer = torch.arange(h * w, device=dev).expand(b, -1).clone()
    pointer[:, visited] = source
    resolved = torch.ones(b, h * w, dtype=torch.bool, device=dev)
    resolved[:, visited] = ~(interior[source] & (source > visited))
    while not bool(resolved.all()):
        pointer, resolved = (torch.where(resolved, pointer, pointer.gather(1, pointer)),
                             resolved | resolved.gather(1, pointer))
    flat = x.reshape(b, ch, h * w)
    return flat.gather(2, pointer.unsqueeze(1).expand(-1, ch, -1)).reshape(b, ch, h, w)


def defocus_blur(x, p, rnd):
    # the reference's kernel is float32 (its sum is not exactly 1) applied to float64 images: so are we, and
    # flat regions truncate to the same level
    return ops.filter2d(_float64(x), ops.disk_kernel(*p).float().double().to(x.device))


def motion_blur(x, p, rnd):
    """ImageMagick's MotionBlurImage (as the script calls it through Wand), quantized as ImageMagick does."""
    angles = rnd.uniform((x.shape[0],), -45, 45, dtype=torch.float64)
    return ops.magick_quantize(ops.motion_blur(x, p[0], p[1], angles))


def _motion_blur_imagecorruptions(x, p, rnd):
    """imagecorruptions' numpy imitation of ImageMagick's motion blur (float, truncated by the caller)."""
    angles = rnd.uniform((x.shape[0],), -45, 45, dtype=torch.float64)
    return ops.motion_blur(x, p[0], p[1], angles, stop_at_edge=True)


def zoom_blur(x, p, rnd):
    h, w = x.shape[-2:]
    factors = ops.zoom_factors(*p)
    out = torch.zeros_like(x)
    for z in factors:
        out += ops.clipped_zoom(x, z)[..., :h, :w]
    return (x + out) / (len(factors) + 1)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """OpenCV's RGB2GRAY weights, [B, 1, H, W]."""
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)


def snow(x, p, rnd):
    """make_imagenet_c.py's snow: the flake layer is truncated to uint8, trimmed to the image, blurred by
    ImageMagick (quantized to uint8 again), and added twice (once rotated by 180°)."""
    mean, std, zoom, threshold, radius, sigma, blend = p
    b, _, h, w = x.shape
    layer = ops.clipped_zoom(rnd.normal((b, 1, h, w), mean, std), zoom)[..., :h, :w]
    layer = torch.floor(torch.where(layer < threshold, torch.zeros_like(layer), layer).clamp(0, 1) * 255) / 255
    layer = ops.magick_quantize(ops.motion_blur(layer, radius, sigma, rnd.uniform((b,), -135, -45,
                                                                                  dtype=torch.float64)))
    return _snow_blend(x, layer, blend)


def _snow_imagecorruptions(x, p, rnd):
    """imagecorruptions' snow: the float layer blurred by its imitation of ImageMagick, then rounded."""
    mean, std, zoom, threshold, radius, sigma, blend = p
    b, _, h, w = x.shape
    layer = ops.clipped_zoom(rnd.normal((b, 1, h, w), mean, std), zoom)
    layer = torch.where(layer < threshold, torch.zeros_like(layer), layer).clamp(0, 1)
    layer = ops.motion_blur(layer, radius, sigma, rnd.uniform((b,), -135, -45, dtype=torch.float64),
                            stop_at_edge=True)
    return _snow_blend(x, torch.round(layer * 255)[..., :h, :w] / 255, blend)


def _snow_blend(x: torch.Tensor, layer: torch.Tensor, blend: float) -> torch.Tensor:
    x = blend * x + (1 - blend) * torch.maximum(x, _gray(x) * 1.5 + 0.5)
    return x + layer + layer.flip(-2, -1)


def frost_texture_files() -> list[Path]:
    """The five frost photographs ImageNet-C samples from (Hendrycks' files, shipped as ``imagecorruptions``
    package data)."""
    spec = importlib.util.find_spec("imagecorruptions")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("frost needs the ImageNet-C frost textures: pip install imagecorruptions")
    folder = Path(next(iter(spec.submodule_search_locations))) / "frost"
    return [folder / n for n in ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")]


@functools.lru_cache(maxsize=1)
def frost_textures() -> tuple[torch.Tensor, ...]:
    """The frost textures, uint8 [3, H, W] (PIL decodes them exactly as the reference's OpenCV does)."""
    return tuple(torch.from_numpy(np.array(Image.open(f).convert("RGB"))).permute(2, 0, 1)
                 for f in frost_texture_files())


@functools.lru_cache(maxsize=16)
def _scaled_textures(h: int, w: int, scale: float | None) -> tuple[torch.Tensor, ...]:
    """Textures resized as the reference does (OpenCV bicubic): by ``scale`` (1: as stored, as make_imagenet_c.py
    crops them), or (None, or too small to crop an h×w image from at that scale: our generalization) just enough
    to cover the image, times 1.1 (imagecorruptions' rule)."""
    out = []
    for t in frost_textures():
        th, tw = t.shape[-2:]
        if scale is not None and round(th * scale) > h and round(tw * scale) > w:
            size = (int(round(th * scale)), int(round(tw * scale)))
        else:
            factor = 1.1 * max(1.0, h / th, w / tw)
            size = (math.ceil(th * factor), math.ceil(tw * factor))
        if size == (th, tw):
            out.append(t.float() / 255)
            continue
        resized = F.interpolate(t[None].float(), size=size, mode="bicubic", align_corners=False)
        out.append(resized[0].round().clamp(0, 255) / 255)
    return tuple(out)


def frost(x, p, rnd):
    weight_x, weight_frost, scale = p
    b, _, h, w = x.shape
    textures = _scaled_textures(h, w, scale)
    idx = rnd.randint((b,), 0, 5)
    heights = torch.tensor([textures[i].shape[-2] - h for i in idx.tolist()], device=x.device)
    widths = torch.tensor([textures[i].shape[-1] - w for i in idx.tolist()], device=x.device)
    top, left = rnd.randint((b,), 0, heights), rnd.randint((b,), 0, widths)
    crops = torch.stack([textures[i][:, t:t + h, s:s + w]
                         for i, t, s in zip(idx.tolist(), top.tolist(), left.tolist(), strict=True)]).to(x.device)
    # in float64 levels and truncated here, as the reference's np.clip(c0 · x + c1 · frost, 0, 255) → np.uint8
    levels = weight_x * _levels(x).double() + weight_frost * _levels(crops).double()
    return torch.floor(levels.clamp(0, 255)).to(x) / 255


def fog(x, p, rnd):
    strength, decay = p
    b, _, h, w = x.shape
    mapsize = 1 << (max(h, w) - 1).bit_length()
    plasma = ops.plasma_fractal(b, mapsize, decay, lambda s, lo, hi: rnd.uniform(s, lo, hi, dtype=torch.float64))
    plasma = plasma[:, None, :h, :w].to(x)
    peak = x.amax(dim=(1, 2, 3), keepdim=True)
    return (x + strength * plasma) * peak / (peak + strength)


def _float64(x: torch.Tensor) -> torch.Tensor:
    """x in float64 as the reference has it (uint8 / 255.), so results landing exactly on an integer level
    truncate the same way."""
    return _levels(x).double() / 255


def brightness(x, c, rnd):
    hsv = ops.rgb_to_hsv(_float64(x))  # scikit-image's round trip in float64: the same truncation to uint8
    hsv[:, 2] = (hsv[:, 2] + c).clamp(0, 1)
    return ops.hsv_to_rgb(hsv)


def saturate(x, p, rnd):
    hsv = ops.rgb_to_hsv(_float64(x))
    hsv[:, 1] = (hsv[:, 1] * p[0] + p[1]).clamp(0, 1)
    return ops.hsv_to_rgb(hsv)


def contrast(x, c, rnd):
    means = x.mean(dim=(2, 3), keepdim=True)
    return (x - means) * c + means


def elastic_transform(x, p, rnd):
    alpha, sigma_frac, disp_frac, affine_frac = p
    b, _, h, w = x.shape
    if affine_frac > 0:
        x = _random_affine(x, affine_frac * h, rnd)
    max_d = disp_frac * h
    sigma = (sigma_frac * h, sigma_frac * w)
    dx = ops.gaussian_blur(rnd.uniform((b, h, w), -max_d, max_d, dtype=torch.float64), sigma, mode="reflect",
                           truncate=3) * alpha
    dy = ops.gaussian_blur(rnd.uniform((b, h, w), -max_d, max_d, dtype=torch.float64), sigma, mode="reflect",
                           truncate=3) * alpha
    ys, xs = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gx = (2 * (xs + dx.float().to(x.device)) + 1) / w - 1
    gy = (2 * (ys + dy.float().to(x.device)) + 1) / h - 1
    grid = torch.stack((gx, gy), -1).to(x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _random_affine(x: torch.Tensor, jitter: float, rnd: Draws) -> torch.Tensor:
    """The scripts' random affine: three points around the centre moved by U(-jitter, jitter) (float32, as
    there), then OpenCV's ``warpAffine`` with its reflect-101 border — called itself on the CPU (the reference;
    its 1/32-pixel fixed point and interpolation tables are what the released images went through), emulated on
    other devices (source positions rounded to 1/32 pixel as OpenCV does, corner-aligned reflection)."""
    b, _, h, w = x.shape
    centre, half = np.float32([h, w]) // 2, min(h, w) // 3
    src = torch.from_numpy(np.array([centre + half, [centre[0] + half, centre[1] - half], centre - half],
                                    dtype=np.float64))
    dst = src + rnd.uniform((b, 3, 2), -jitter, jitter, dtype=torch.float64).cpu().float().double()
    if x.device.type == "cpu":  # the reference's own call: OpenCV's fixed-point warpAffine on float32 images
        import cv2

        out = torch.empty_like(x)
        for i in range(b):
            m = cv2.getAffineTransform(src.numpy().astype(np.float32), dst[i].numpy().astype(np.float32))
            image = x[i].permute(1, 2, 0).numpy().astype(np.float32)
            warped = cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT_101)
            out[i] = torch.from_numpy(warped.reshape(h, w, -1)).permute(2, 0, 1).to(x.dtype)
        return out
    ones = torch.ones(b, 3, 1, dtype=torch.float64)
    # inverse map: output point (dst) → source point (src), solved per image
    inverse = torch.linalg.solve(torch.cat((dst, ones), 2), src.expand(b, -1, -1)).transpose(1, 2)  # [b, 2, 3]
    mapped = ops.opencv_warp_positions(inverse, h, w)
    grid = torch.stack((mapped[..., 0] / (w - 1) * 2 - 1, mapped[..., 1] / (h - 1) * 2 - 1), -1)
    return F.grid_sample(x, grid.to(x), mode="bilinear", padding_mode="reflection", align_corners=True)


def pixelate(x, p, rnd):
    scale, up = p
    h, w = x.shape[-2:]
    # PIL resizes uint8 images horizontally, then vertically, rounding half up after each pass; window means of
    # integer levels are exact up to float error far below the 1/(2·window) gap around a tie, hence the 1e-3
    small = torch.floor(ops.box_resize(torch.round(x * 255), int(w * scale), -1).add_(0.5 + 1e-3))
    small = torch.floor(ops.box_resize(small, int(h * scale), -2).add_(0.5 + 1e-3)).div_(255)
    return ops.resample(small, (h, w), up)  # upscaling: one source pixel per output pixel, box or nearest


def jpeg_compression(x, quality, rnd):
    return ops.jpeg_roundtrip(x, quality)


def spatter(x, p, rnd):
    mean, std, sigma, threshold, second, mud = p
    b, _, h, w = x.shape
    liquid = ops.gaussian_blur(rnd.normal((b, 1, h, w), mean, std).double(), sigma)
    liquid = torch.where(liquid < threshold, torch.zeros_like(liquid), liquid)
    if mud:
        m = ops.gaussian_blur((liquid > threshold).float(), second)
        m = torch.where(m < 0.8, torch.zeros_like(m), m).to(x)
        colour = torch.tensor([63, 42, 20], device=x.device, dtype=x.dtype).view(1, 3, 1, 1) / 255
        return x * (1 - m) + colour * m
    liquid8 = (liquid * 255).long() % 256  # numpy's float → uint8 cast wraps
    m = liquid8.float() * _spatter_distance(liquid8.to(torch.uint8).cpu()).to(x.device)
    m = m / m.amax(dim=(2, 3), keepdim=True).clamp_min(1e-12) * second
    colour = torch.tensor([175, 238, 238], device=x.device, dtype=x.dtype).view(1, 3, 1, 1) / 255
    return x + m.to(x) * colour


def _spatter_distance(liquid: torch.Tensor) -> torch.Tensor:
    """The water-drop shading of ImageNet-C spatter (edges → distance → equalized → embossed), OpenCV per image
    on the CPU: exactly the reference's chain (Canny and the 5×5 distance transform have no batched torch twin)."""
    import cv2

    kernel = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
    out = []
    for layer in liquid[:, 0].numpy():
        dist = cv2.distanceTransform(255 - cv2.Canny(layer, 50, 150), cv2.DIST_L2, 5)
        _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
        dist = cv2.equalizeHist(cv2.blur(dist, (3, 3)).astype(np.uint8))
        dist = cv2.blur(cv2.filter2D(dist, cv2.CV_8U, kernel), (3, 3)).astype(np.float32)
        out.append(torch.from_numpy(dist))
    return torch.stack(out).unsqueeze(1)


def _defocus_blur_cpu(p):
    """The reference's own call per uint8 [H, W, 3] image: OpenCV filter2D of the float64 image with the float32
    disk, truncated to uint8 as there."""
    import cv2

    kernel = ops.disk_kernel(*p).float().numpy()  # torch work: here, in the calling thread
    return lambda a: (np.clip(cv2.filter2D(a / 255.0, -1, kernel), 0, 1) * 255).astype(np.uint8)


def _pixelate_cpu(p):
    """PIL's box downscale and box (or nearest) upscale of each uint8 [H, W, 3] image, as the reference."""
    scale, up = p

    def pixelate_image(a: np.ndarray) -> np.ndarray:
        h, w = a.shape[:2]
        small = Image.fromarray(a).resize((int(w * scale), int(h * scale)), Image.BOX)
        return np.array(small.resize((w, h), Image.BOX if up == "box" else Image.NEAREST))
    return pixelate_image


def _jpeg_compression_cpu(quality):
    return functools.partial(ops.jpeg_image, quality=quality)


#: CPU: deterministic corruptions whose reference is one library call per image (OpenCV, PIL, libjpeg). On the
#: CPU, ``corrupt`` makes that call on uint8 images, split over threads (``ops.map_images``): 2–4× the batched
#: tensor effect above, which runs on other devices and is tested equal to it. Each entry maps a severity's
#: constants to the per-image function (made in the calling thread: no torch operation may run in the workers)
PER_IMAGE_CPU = {"defocus_blur": _defocus_blur_cpu, "pixelate": _pixelate_cpu,
                 "jpeg_compression": _jpeg_compression_cpu}


#: the effects the ``imagecorruptions`` package computes differently from make_imagenet_c.py
IMAGECORRUPTIONS = {"motion_blur": _motion_blur_imagecorruptions, "snow": _snow_imagecorruptions}
