"""Batched building blocks of the ImageNet-C corruptions, on [B, C, H, W] tensors.

Each reproduces the numpy / scipy / scikit-image / OpenCV / PIL operation the reference code
(Hendrycks & Dietterich, ICLR 2019; the ``imagecorruptions`` package) applies to one image at a time, including
its border rule, so results agree per pixel (``tests/transforms/test_corruptions.py``).
"""

from __future__ import annotations

import functools
import io
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def pad_index(n: int, before: int, after: int, mode: str, device: torch.device) -> torch.Tensor:
    """Source indices of a padded axis. ``nearest`` repeats the edge; ``reflect`` is scipy's half-sample
    symmetric rule (-1 → 0); ``reflect101`` is OpenCV's default border (-1 → 1)."""
    i = torch.arange(-before, n + after, device=device)
    if mode == "nearest" or n == 1:
        return i.clamp(0, n - 1)
    if mode == "reflect":
        i = i % (2 * n)
        return torch.where(i >= n, 2 * n - 1 - i, i)
    if mode == "reflect101":
        i = i % (2 * n - 2)
        return torch.where(i >= n, 2 * n - 2 - i, i)
    raise ValueError(f"unknown padding mode {mode!r}")


def pad2d(x: torch.Tensor, ry: int, rx: int, mode: str) -> torch.Tensor:
    """Pads the last two axes by ``ry`` rows and ``rx`` columns on each side."""
    h, w = x.shape[-2:]
    if mode in ("nearest", "reflect101") and ry < h and rx < w:
        shape = x.shape
        y = F.pad(x.reshape(-1, 1, h, w), (rx, rx, ry, ry), mode="replicate" if mode == "nearest" else "reflect")
        return y.reshape(*shape[:-2], h + 2 * ry, w + 2 * rx)
    x = x.index_select(-2, pad_index(h, ry, ry, mode, x.device))
    return x.index_select(-1, pad_index(w, rx, rx, mode, x.device))


def _correlate1d(x: torch.Tensor, kernel: torch.Tensor, dim: int, out_len: int) -> torch.Tensor:
    """'valid' correlation of an already padded axis as a sum of shifted slices (faster on the CPU than a
    one-channel conv2d, and the same on CUDA)."""
    out = torch.zeros(*x.shape[:dim], out_len, *x.shape[dim + 1:], dtype=x.dtype, device=x.device) \
        if dim != -1 else torch.zeros(*x.shape[:-1], out_len, dtype=x.dtype, device=x.device)
    for i, weight in enumerate(kernel.tolist()):
        out.add_(x.narrow(dim, i, out_len), alpha=weight)
    return out


def _separable(x: torch.Tensor, ky: torch.Tensor | None, kx: torch.Tensor | None, mode: str) -> torch.Tensor:
    """Correlates the last two axes with 1-D kernels (odd lengths, centred), borders padded by ``mode``. A kernel
    longer than a fifth of its axis is applied as that axis's banded matrix (one matrix product instead of
    one pass per tap: elastic's σ = 170 px kernel has 1,021 taps on a 224-pixel axis)."""
    h, w = x.shape[-2:]
    if (ky is not None and len(ky) > h // 5) or (kx is not None and len(kx) > w // 5):
        y = x if kx is None else x @ _correlation_matrix(kx, w, mode, x.dtype, x.device).T
        return y if ky is None else _correlation_matrix(ky, h, mode, x.dtype, x.device) @ y
    ry = len(ky) // 2 if ky is not None else 0
    rx = len(kx) // 2 if kx is not None else 0
    y = pad2d(x, ry, rx, mode)
    if kx is not None:
        y = _correlate1d(y, kx, -1, w)
    if ky is not None:
        y = _correlate1d(y, ky, -2, h)
    return y


def _correlation_matrix(kernel: torch.Tensor, n: int, mode: str, dtype: torch.dtype, device: torch.device
                        ) -> torch.Tensor:
    """The [n, n] matrix of correlating an axis of length n with ``kernel`` under the border rule ``mode``:
    each tap's weight added at the source index the padded position maps to (reflections fold back in)."""
    key = (tuple(kernel.tolist()), n, mode)
    return _cached_matrix(key).to(dtype=dtype, device=device)


@functools.lru_cache(maxsize=16)
def _cached_matrix(key: tuple) -> torch.Tensor:
    taps, n, mode = key
    r = len(taps) // 2
    source = pad_index(n, r, r, mode, torch.device("cpu"))
    rows = torch.arange(n).repeat_interleave(len(taps))
    cols = source.unfold(0, len(taps), 1).reshape(-1)
    matrix = torch.zeros(n * n, dtype=torch.float64)
    matrix.index_add_(0, rows * n + cols, torch.tensor(taps, dtype=torch.float64).repeat(n))
    return matrix.view(n, n)


def gaussian_kernel1d(sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """scipy.ndimage's Gaussian: radius int(truncate·σ + 0.5), normalized weights."""
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(x: torch.Tensor, sigma: float | tuple[float, float], *, mode: str = "nearest",
                  truncate: float = 4.0) -> torch.Tensor:
    """skimage.filters.gaussian over the last two axes (default border ``nearest``, as scikit-image)."""
    sy, sx = sigma if isinstance(sigma, tuple) else (sigma, sigma)
    ky = gaussian_kernel1d(sy, truncate) if sy > 0 else None
    kx = gaussian_kernel1d(sx, truncate) if sx > 0 else None
    return _separable(x, ky, kx, mode)


def disk_kernel(radius: float, alias_blur: float) -> torch.Tensor:
    """ImageNet-C's anti-aliased disk (defocus blur): a normalized disk smoothed by OpenCV's 3×3 (radius ≤ 8)
    or 5×5 Gaussian with σ = ``alias_blur`` and OpenCV's reflect-101 border."""
    if radius <= 8:
        span, ksize = 8, 3
    else:
        span, ksize = int(radius), 5
    t = torch.arange(-span, span + 1, dtype=torch.float64)
    disk = ((t.view(-1, 1) ** 2 + t.view(1, -1) ** 2) <= radius**2).double()
    disk /= disk.sum()
    g = torch.exp(-((torch.arange(ksize, dtype=torch.float64) - (ksize - 1) / 2) ** 2) / (2 * alias_blur**2))
    g /= g.sum()
    return _separable(disk, g, g, "reflect101")


def filter2d(x: torch.Tensor, kernel: torch.Tensor, *, mode: str = "reflect101") -> torch.Tensor:
    """OpenCV filter2D (correlation, centred anchor) of every channel, reflect-101 border by default."""
    shape = x.shape
    kh, kw = kernel.shape
    y = pad2d(x.reshape(-1, 1, *shape[-2:]), kh // 2, kw // 2, mode)
    if kh * kw > 121 and y.shape[-1] * y.shape[-2] > 4096:
        out = _fft_correlate(y, kernel.to(y.dtype))
    else:
        out = F.conv2d(y, kernel.to(y.dtype).view(1, 1, kh, kw))
    return out.reshape(shape)


def _fft_correlate(y: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """'valid' correlation by FFT, for large kernels (defocus blur)."""
    kh, kw = kernel.shape
    h, w = y.shape[-2:]
    size = (_fft_size(h), _fft_size(w))  # zero-padded to a 2·3·5-smooth length: the valid part is unchanged
    fk = torch.fft.rfft2(kernel.flip(0, 1), s=size)
    out = torch.fft.irfft2(torch.fft.rfft2(y, s=size) * fk, s=size)
    return out[..., kh - 1:h, kw - 1:w]


def _fft_size(n: int) -> int:
    """The smallest length ≥ n whose only prime factors are 2, 3 and 5 (fast FFT lengths)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def motion_blur(x: torch.Tensor, radius: int, sigma: float, angles: torch.Tensor, *, stop_at_edge: bool = False
                ) -> torch.Tensor:
    """ImageMagick's MotionBlurImage: a sum of 2·radius + 1 copies shifted along the direction ``angles``
    (degrees, one per image) with half-Gaussian weights; shifts repeat the edge (ImageMagick's default virtual
    pixels). ``stop_at_edge``: imagecorruptions' imitation, whose sum ends at a shift past the image."""
    width = 2 * radius + 1
    taps = np.exp(-(np.arange(width) ** 2) / (2 * sigma**2)) / (np.sqrt(2 * np.pi) * sigma)
    taps = taps / taps.sum()
    h, w = x.shape[-2:]
    pad = width
    padded = pad2d(x, pad, pad, "nearest")
    out = torch.zeros_like(x)
    for b, angle in enumerate(angles.double().cpu().numpy()):
        py, px = width * np.sin(np.deg2rad(angle)), width * np.cos(np.deg2rad(angle))
        hyp = math.hypot(py, px)
        for i in range(width):
            dy = -math.ceil(((i * py) / hyp) - 0.5)
            dx = -math.ceil(((i * px) / hyp) - 0.5)
            if stop_at_edge and (abs(dy) >= h or abs(dx) >= w):
                break
            out[b].add_(padded[b, ..., pad - dy:pad - dy + h, pad - dx:pad - dx + w], alpha=float(taps[i]))
    return out


def magick_quantize(x: torch.Tensor) -> torch.Tensor:
    """What ImageMagick (Q16, as Debian and the Wand wheels build it) writes to an 8-bit PNG for a float result in
    [0, 1]: rounded to its 16-bit quantum, then divided by 257 with truncation (checked against Wand)."""
    return torch.floor(torch.floor(x.clamp(0, 1) * 65535 + 0.5) / 257) / 255


def opencv_warp_positions(inverse: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The source positions [B, H, W, 2] (x, y) OpenCV's ``warpAffine`` (bilinear) samples for an inverse map
    ``inverse`` [B, 2, 3]: per axis round(1024 · m₀x) + round(1024 · (m₁y + m₂)) in fixed point, then to 1/32
    pixel as ``(… + 16) >> 5``."""
    xs = torch.arange(w, dtype=torch.float64)
    ys = torch.arange(h, dtype=torch.float64)
    axes = []
    for row in (0, 1):
        m = inverse[:, row].double()
        along_x = torch.round(m[:, 0, None] * xs * 1024)  # torch.round is half-to-even, as cvRound
        along_y = torch.round((m[:, 1, None] * ys + m[:, 2, None]) * 1024)
        axes.append(torch.floor((along_y[:, :, None] + along_x[:, None, :] + 16) / 32) / 32)
    return torch.stack(axes, -1)


def zoom_factors(start: float, stop: float, step: float) -> list[float]:
    """The zoom factors exactly as the reference's ``np.arange`` yields them."""
    return [float(z) for z in np.arange(start, stop, step)]


def clipped_zoom(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Crops the centre 1/factor of the last two axes and zooms it back with scipy's order-1 ``zoom``
    (corner-aligned bilinear; output size round(crop · factor), which may exceed the input)."""
    h, w = x.shape[-2:]
    ch, cw = math.ceil(h / factor), math.ceil(w / factor)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = x[..., top:top + ch, left:left + cw]
    size = (int(round(ch * factor)), int(round(cw * factor)))
    shape = crop.shape
    out = F.interpolate(crop.reshape(-1, 1, ch, cw), size=size, mode="bilinear", align_corners=True)
    return out.reshape(*shape[:-2], *size)


def plasma_fractal(n: int, mapsize: int, wibbledecay: float, uniform) -> torch.Tensor:
    """Diamond-square height maps [n, mapsize, mapsize] in [0, 1] (ImageNet-C fog), batched; ``uniform(shape,
    low, high)`` supplies the random draws in the reference's order."""
    m = torch.zeros(n, mapsize, mapsize, dtype=torch.float64)
    step, wibble = mapsize, 100.0

    def wibbled_mean(total: torch.Tensor) -> torch.Tensor:
        return total / 4 + wibble * uniform(tuple(total.shape), -wibble, wibble).to(total)

    while step >= 2:
        half = step // 2
        corners = m[:, 0::step, 0::step]
        squares = corners + torch.roll(corners, -1, dims=1)
        squares = squares + torch.roll(squares, -1, dims=2)
        m[:, half::step, half::step] = wibbled_mean(squares)
        centres, corners = m[:, half::step, half::step], m[:, 0::step, 0::step]
        lt = centres + torch.roll(centres, 1, dims=1) + corners + torch.roll(corners, -1, dims=2)
        m[:, 0::step, half::step] = wibbled_mean(lt)
        tt = centres + torch.roll(centres, 1, dims=2) + corners + torch.roll(corners, -1, dims=1)
        m[:, half::step, 0::step] = wibbled_mean(tt)
        step //= 2
        wibble /= wibbledecay
    m -= m.amin(dim=(1, 2), keepdim=True)
    return m / m.amax(dim=(1, 2), keepdim=True)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """skimage.color.rgb2hsv on [B, 3, H, W] (ties resolved as scikit-image does: blue, then green, then red)."""
    r, g, b = x.unbind(1)
    v = x.amax(1)
    delta = v - x.amin(1)
    safe = torch.where(delta == 0, torch.ones_like(delta), delta)
    s = torch.where(delta == 0, torch.zeros_like(v), delta / torch.where(v == 0, torch.ones_like(v), v))
    h = torch.where(b == v, 4 + (r - g) / safe, torch.where(g == v, 2 + (b - r) / safe, (g - b) / safe))
    h = torch.where(delta == 0, torch.zeros_like(h), (h / 6) % 1)
    return torch.stack((h, s, v), 1)


#: per hue sector of skimage's hsv2rgb, which of (v, p, q, t) each of R, G, B takes
_SECTOR_SOURCES = torch.tensor([[0, 3, 1], [2, 0, 1], [1, 0, 3], [1, 2, 0], [3, 1, 0], [0, 1, 2]])


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """skimage.color.hsv2rgb on [B, 3, H, W]: the same p, q, t arithmetic, each channel gathered from the four
    candidate planes by its hue sector."""
    h, s, v = x.unbind(1)
    hi = torch.floor(h * 6)
    f = h * 6 - hi
    candidates = torch.stack((v, v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)), 1)
    sources = _SECTOR_SOURCES.to(x.device)[hi.long() % 6].permute(0, 3, 1, 2)
    return torch.gather(candidates, 1, sources)


@functools.lru_cache(maxsize=64)
def pil_resample_matrix(n_in: int, n_out: int, resample: str) -> torch.Tensor:
    """PIL's 1-D resampling weights [n_out, n_in] for ``box`` (antialiasing box filter, as ``Image.BOX``) or
    ``nearest`` (``Image.NEAREST``: PIL steps a float source coordinate from scale/2 by scale and truncates).
    Cached: do not modify the result."""
    scale = n_in / n_out
    weights = torch.zeros(n_out, n_in, dtype=torch.float64)
    if resample == "nearest":
        src, position = [], scale * 0.5
        for _ in range(n_out):
            src.append(min(int(position), n_in - 1))
            position += scale
        weights[torch.arange(n_out), torch.tensor(src)] = 1
        return weights
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    for i in range(n_out):
        centre = (i + 0.5) * scale
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), n_in)
        for j in range(lo, hi):
            u = (j - centre + 0.5) / filterscale
            weights[i, j] = 1.0 if -0.5 < u <= 0.5 else 0.0
        weights[i] /= weights[i].sum()
    return weights


def resample(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Separable PIL-style resize of the last two axes to ``size`` (height, width). Where every output pixel
    takes one source pixel (nearest; box when upscaling) the resize is a gather, exact and far cheaper."""
    wy = pil_resample_matrix(x.shape[-2], size[0], mode)
    wx = pil_resample_matrix(x.shape[-1], size[1], mode)
    if bool((wy == 1).any(1).all()) and bool((wx == 1).any(1).all()):
        rows, cols = wy.argmax(1).to(x.device), wx.argmax(1).to(x.device)
        return x.index_select(-2, rows).index_select(-1, cols)
    return torch.einsum("oh,...hw,pw->...op", wy.to(x), x, wx.to(x))


def box_resize(levels: torch.Tensor, n_out: int, dim: int) -> torch.Tensor:
    """PIL's box downscaling of one axis (-1 or -2) of integer levels: each output is the mean of a contiguous
    window, its sum taken as a difference of running sums (exact for integers, linear in the axis length)."""
    window = pil_resample_matrix(levels.shape[dim], n_out, "box") > 0
    starts = window.to(torch.uint8).argmax(1)
    sizes = window.sum(1)
    running = torch.cumsum(levels, dim)
    running = F.pad(running, (1, 0) if dim == -1 else (0, 0, 1, 0))
    sums = running.index_select(dim, (starts + sizes).to(levels.device)) - running.index_select(
        dim, starts.to(levels.device))
    sizes = sizes.to(levels)
    return sums / (sizes if dim == -1 else sizes.view(-1, 1))


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats on the uint8 grid → uint8."""
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def _pil_jpeg_roundtrip(images: torch.Tensor, quality: int) -> list[np.ndarray]:
    """uint8 [B, 3, H, W] through PIL's JPEG encoder and decoder (what the reference scripts call): [H, W, 3]
    arrays. No torch operation runs here (see ``jpeg_roundtrip_uint8``)."""
    out = []
    for image in images.numpy().transpose(0, 2, 3, 1):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=quality)
        out.append(np.asarray(Image.open(buffer)))
    return out


def _torchvision_jpeg_roundtrip(images: torch.Tensor, quality: int) -> list[torch.Tensor]:
    """The same round trip through torchvision's libjpeg bindings, a batch per call: [3, H, W] tensors."""
    from torchvision.io import ImageReadMode, decode_jpeg, encode_jpeg

    # CHW views of HWC memory: the encoder's own permute to HWC is then already contiguous, no copy
    hwc = images.permute(0, 2, 3, 1)
    return decode_jpeg(encode_jpeg([image.permute(2, 0, 1) for image in hwc], quality=quality),
                       mode=ImageReadMode.RGB)


def _stack(images: list) -> torch.Tensor:
    """The round trips' images as one uint8 [B, 3, H, W] tensor."""
    if isinstance(images[0], np.ndarray):
        return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return torch.stack(images)


@functools.cache
def _torchvision_jpeg_is_pils() -> bool:
    """Whether torchvision's JPEG round trip gives PIL's pixels here (both wrap libjpeg(-turbo); different builds
    could differ), checked once on noise and smooth images of odd sizes at the qualities in use."""
    g = torch.Generator().manual_seed(0)
    probes = [(torch.rand(2, 3, 37, 53, generator=g) * 255).round().to(torch.uint8),
              F.interpolate(torch.rand(2, 3, 4, 4, generator=g), size=(64, 48), mode="bilinear").mul(255).round()
              .to(torch.uint8)]
    try:
        return all(torch.equal(_stack(_pil_jpeg_roundtrip(p, q)), _stack(_torchvision_jpeg_roundtrip(p, q)))
                   for p in probes for q in (85, 25, 7))
    except (ImportError, RuntimeError):
        return False


def _jpeg_roundtrip_of_this_machine():
    """The batch round trip to use: torchvision's bindings where they give PIL's pixels here, else PIL's."""
    return _torchvision_jpeg_roundtrip if _torchvision_jpeg_is_pils() else _pil_jpeg_roundtrip


def jpeg_roundtrip_uint8(images: torch.Tensor, quality: int) -> torch.Tensor:
    """uint8 [B, 3, H, W] (CPU) through a JPEG encode/decode at ``quality`` with PIL's encoder (the reference's):
    torchvision's faster bindings when they give PIL's pixels on this machine (checked once), else PIL. The
    batch is split over torch's intra-op thread count: both libraries release the GIL while they code. The
    threads run no torch operation (one would start a second OpenMP team, spinning against the first)."""
    roundtrip = _jpeg_roundtrip_of_this_machine()
    parts = images.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2).tensor_split(
        min(torch.get_num_threads(), len(images)))
    if len(parts) == 1:
        return _stack(roundtrip(images, quality))
    return _stack([image for part in _jpeg_pool().map(roundtrip, parts, [quality] * len(parts)) for image in part])


def map_images(x: torch.Tensor, per_image, quality: int | None) -> torch.Tensor:
    """[B, 3, H, W] in [0, 1] on the uint8 grid (CPU) → the same dtype: each image, as a uint8 [H, W, 3] array, through
    ``per_image`` (the reference's own OpenCV / PIL / libjpeg call), then the JPEG round trip at ``quality``
    (None: none). Every step of an image runs in one of the threads (no torch operation there, see above), so the
    image stays in cache from the float input to the float output."""
    src = x.detach().to(torch.float64 if x.dtype == torch.float64 else torch.float32).contiguous().numpy()
    out = np.empty_like(src)
    _torchvision_jpeg_is_pils()  # decided in this thread: the check runs torch operations
    bounds = np.linspace(0, len(src), min(max(torch.get_num_threads(), 1), len(src)) + 1).astype(int).tolist()
    work = functools.partial(_map_range, src, out, per_image, quality)
    list(_jpeg_pool().map(work, bounds[:-1], bounds[1:]))
    return torch.from_numpy(out).to(x.dtype)


def _map_range(src: np.ndarray, out: np.ndarray, per_image, quality: int | None, start: int, stop: int) -> None:
    """One thread's share of ``map_images``: images ``start`` to ``stop``."""
    scale = src.dtype.type(255)
    for i in range(start, stop):
        scaled = src[i] * scale
        np.clip(np.rint(scaled, out=scaled), 0, 255, out=scaled)
        levels = per_image(np.ascontiguousarray(scaled.astype(np.uint8).transpose(1, 2, 0)))  # HWC in memory
        if quality is not None:
            levels = jpeg_image(levels, quality)
        np.divide(levels.transpose(2, 0, 1), scale, out=out[i], dtype=out.dtype)


def jpeg_image(image: np.ndarray, quality: int) -> np.ndarray:
    """One uint8 [H, W, 3] image (writeable) through the round trip of ``jpeg_roundtrip_uint8``; the bindings
    check must have run before in the main thread (``map_images`` runs it)."""
    roundtrip = _jpeg_roundtrip_of_this_machine()
    out = roundtrip(torch.from_numpy(image).permute(2, 0, 1)[None], quality)[0]
    return out if isinstance(out, np.ndarray) else out.permute(1, 2, 0).numpy()


def _jpeg_pool() -> ThreadPoolExecutor:
    """This process's worker threads: a process forked after the pool started (a DataLoader worker) gets its own,
    as the parent's threads do not exist there."""
    return _pool_of(os.getpid())


@functools.cache
def _pool_of(pid: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=max(torch.get_num_threads(), 1), thread_name_prefix="engine")


def jpeg_roundtrip(x: torch.Tensor, quality: int) -> torch.Tensor:
    """``jpeg_roundtrip_uint8`` for [0, 1] floats on the uint8 grid, in and out (same device)."""
    return jpeg_roundtrip_uint8(to_uint8(x).cpu(), quality).to(x.dtype).div_(255).to(x.device)
