"""The embedded dataset: procedurally generated, seeded shape images that need no download.

Ten classes of shapes (circle, triangle, square, star, cross, ring, crescent, arrow, heart, bolt). Each image draws
its class's shape at a random position, scale and rotation, filled with a random two-colour texture (solid, stripes,
checks or noise) that stands out from a random gradient background with thin clutter (lines, dots), sometimes
with a small occluder.
Only the shape's outline identifies the class, so colour/texture statistics (what a random network captures) are
not enough, while a network that learned shape is rewarded. Image ``i`` of split ``s`` depends only on
``(seed, s, i)``; generated splits are cached as uint8 arrays keyed by the generator's version and parameters.
"""

from __future__ import annotations

import io
import math
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from ssl_robustbench.errors import warn
from ssl_robustbench.fileio import atomic_write_bytes, stable_hash

CLASSES = ("circle", "triangle", "square", "star", "cross", "ring", "crescent", "arrow", "heart", "bolt")
SPLITS = {"train": (0, 5000), "val": (1, 1000), "test": (2, 2000)}  # split -> (stream id, size)
GENERATOR_VERSION = 2
_SUPER = 2  # draw at 2× and downsample for anti-aliased edges


Points = list[tuple[float, float]]


def _regular(n: int, radius: float = 1.0, phase: float = -math.pi / 2) -> Points:
    angles = [phase + 2 * math.pi * k / n for k in range(n)]
    return [(radius * math.cos(a), radius * math.sin(a)) for a in angles]


def _star() -> Points:
    outer, inner = _regular(5), _regular(5, 0.42, -math.pi / 2 + math.pi / 5)
    return [p for pair in zip(outer, inner, strict=True) for p in pair]


def _heart() -> Points:
    pts = []
    for k in range(48):
        t = 2 * math.pi * k / 48
        x = 16 * math.sin(t) ** 3
        y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
        pts.append((x / 17, -y / 17 + 0.1))
    return pts


# Outlines in unit coordinates (shape fits in [-1, 1]²); ring and crescent are a disc minus a second disc.
_OUTLINES = {
    "circle": _regular(48),
    "triangle": _regular(3, 1.05, -math.pi / 2),
    "square": [(-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8)],
    "star": _star(),
    "cross": [(-0.3, -1), (0.3, -1), (0.3, -0.3), (1, -0.3), (1, 0.3), (0.3, 0.3), (0.3, 1), (-0.3, 1), (-0.3, 0.3),
              (-1, 0.3), (-1, -0.3), (-0.3, -0.3)],
    "ring": _regular(48),
    "crescent": _regular(48),
    "arrow": [(-1, -0.25), (0.2, -0.25), (0.2, -0.7), (1, 0), (0.2, 0.7), (0.2, 0.25), (-1, 0.25)],
    "heart": _heart(),
    "bolt": [(-0.2, -1), (0.55, -1), (0.1, -0.2), (0.6, -0.2), (-0.35, 1), (-0.05, 0.15), (-0.55, 0.15)],
}
_HOLES = {"ring": (0.0, 0.0, 0.55), "crescent": (0.45, -0.2, 0.85)}  # (dx, dy, radius) of the removed disc


def _place(points: Points, cx: float, cy: float, scale: float, angle: float) -> Points:
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + scale * (c * x - s * y), cy + scale * (s * x + c * y)) for x, y in points]


def _texture(rng: np.random.Generator, size: int, *, avoid: np.ndarray | None = None) -> np.ndarray:
    """A random two-colour texture, float [size, size, 3] in [0, 1]; its first colour is kept at least 0.35
    (RGB distance) away from ``avoid`` so the shape stays visible."""
    c1 = rng.uniform(0, 1, 3)
    for _ in range(20):
        if avoid is None or np.linalg.norm(c1 - avoid) >= 0.35:
            break
        c1 = rng.uniform(0, 1, 3)
    c2 = np.clip(c1 + rng.uniform(-0.4, 0.4, 3), 0, 1)
    kind = rng.choice(4, p=[0.4, 0.25, 0.2, 0.15])
    yy, xx = np.mgrid[0:size, 0:size] / size
    if kind == 0:
        t = np.zeros((size, size))
    elif kind == 1:
        a = rng.uniform(0, math.pi)
        t = (np.sin((xx * math.cos(a) + yy * math.sin(a)) * rng.uniform(8, 30)) > 0).astype(float)
    elif kind == 2:
        f = rng.uniform(6, 16)
        t = ((np.floor(xx * f) + np.floor(yy * f)) % 2).astype(float)
    else:
        t = rng.uniform(0, 1, (size, size))
    return c1 + t[..., None] * (c2 - c1)


def _background(rng: np.random.Generator, size: int) -> tuple[Image.Image, np.ndarray]:
    """Gradient background (sometimes faintly textured) with thin clutter lines and dots; returns it and its
    mean colour."""
    c1, c2 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    a = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:size, 0:size] / size
    g = (xx * math.cos(a) + yy * math.sin(a) + 1.5) / 3
    base = c1 + g[..., None] * (c2 - c1)
    if rng.uniform() < 0.3:
        base = 0.85 * base + 0.15 * _texture(rng, size)
    img = Image.fromarray((np.clip(base, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(2, 6)):
        col = tuple(int(v) for v in rng.integers(0, 256, 3))
        x, y = rng.uniform(0, size, 2)
        if rng.uniform() < 0.6:
            x2, y2 = rng.uniform(0, size, 2)
            draw.line([(x, y), (x2, y2)], fill=col, width=int(rng.integers(1, 3)))
        else:
            r = rng.uniform(1, 3)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=col)
    return img.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.0))), base.mean(axis=(0, 1))


#: Attribute edits of a test image (ImageNet-E style): the same draws, one attribute changed by a second stream.
EDITS = ("background", "size-0.8", "size-0.6", "position", "direction")


def render(label: int, rng: np.random.Generator, size: int = 64, *, edit: str | None = None,
           edit_rng: np.random.Generator | None = None) -> np.ndarray:
    """Renders one image of class ``label``: uint8 [size, size, 3]. ``edit`` (one of ``EDITS``) re-renders the
    same image with its background, object size (× 0.8 or × 0.6), position or rotation drawn anew from
    ``edit_rng``, every other draw unchanged."""
    big = size * _SUPER
    bg, bg_mean = _background(rng, big)
    scale = rng.uniform(0.28, 0.42) * big
    cx, cy = rng.uniform(scale, big - scale, 2)
    angle = rng.uniform(0, 2 * math.pi)
    if edit == "background":
        bg, _ = _background(edit_rng, big)  # the texture still avoids the original background's mean colour
    elif edit is not None and edit.startswith("size-"):
        scale *= float(edit.removeprefix("size-"))
    elif edit == "position":
        cx, cy = edit_rng.uniform(scale, big - scale, 2)
    elif edit == "direction":
        angle += edit_rng.uniform(math.pi / 4, 7 * math.pi / 4)
    name = CLASSES[label]
    mask = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(mask)
    draw.polygon(_place(_OUTLINES[name], cx, cy, scale, angle), fill=255)
    if name in _HOLES:
        dx, dy, r = _HOLES[name]
        draw.polygon(_place([(dx + r * x, dy + r * y) for x, y in _regular(48)], cx, cy, scale, angle), fill=0)
    if rng.uniform() < 0.3:  # a small partial occluder, drawn into the mask as background
        ox, oy = cx + rng.uniform(-1, 1) * scale, cy + rng.uniform(-1, 1) * scale
        w = rng.uniform(0.1, 0.2) * scale
        draw.ellipse([ox - w, oy - w, ox + w, oy + w], fill=0)
    fg = Image.fromarray((_texture(rng, big, avoid=bg_mean) * 255).astype(np.uint8))
    img = Image.composite(fg, bg, mask).resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8)


def generate(split: str, *, seed: int = 0, size: int = 64, n: int | None = None, edit: str | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Generates a split: images uint8 [N, size, size, 3] and labels int64 [N] (balanced, class = i mod 10).

    Args:
        split: ``train``, ``val`` or ``test``.
        seed: dataset seed; the splits use disjoint random streams of it.
        size: image side in pixels.
        n: number of images (default: the split's fixed size).
        edit: an attribute edit of ``EDITS`` (its draws come from a stream of its own).
    """
    if edit is not None and edit not in EDITS:
        raise ValueError(f"unknown edit {edit!r}")
    stream, default_n = SPLITS[split]
    n = default_n if n is None else n
    labels = np.arange(n, dtype=np.int64) % len(CLASSES)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        rng = np.random.default_rng([seed, stream, i])
        edit_rng = np.random.default_rng([seed, stream, i, 1 + EDITS.index(edit)]) if edit else None
        images[i] = render(int(labels[i]), rng, size, edit=edit, edit_rng=edit_rng)
    return images, labels


def load_split(split: str, *, cache_dir: Path, seed: int = 0, size: int = 64, edit: str | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns a split as (uint8 [N,3,H,W], int64 [N]) tensors, generating and caching it on first use
    (``edit``: the split with that attribute edited, image by image)."""
    key = stable_hash({"v": GENERATOR_VERSION, "split": split, "seed": seed, "size": size, "n": SPLITS[split][1]}
                      | ({"edit": edit} if edit else {}))
    path = Path(cache_dir) / "embedded" / f"{split}{'-' + edit if edit else ''}-{key}.npz"
    images = _read_cached(path) if path.is_file() else None
    if images is not None:
        images, labels = images
    else:
        images, labels = generate(split, seed=seed, size=size, edit=edit)
        buf = io.BytesIO()
        np.savez(buf, images=images, labels=labels)
        atomic_write_bytes(path, buf.getvalue())
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels)


def _read_cached(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """A cached split, or None (with a warning) when the file is damaged: it is then generated again."""
    try:
        with np.load(path) as data:
            images, labels = data["images"], data["labels"]
        if images.ndim != 4 or images.dtype != np.uint8 or len(images) != len(labels):
            raise ValueError(f"unexpected arrays {images.shape} {images.dtype}, {labels.shape}")
        return images, labels
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        warn(f"embedded-data cache {path} is damaged ({error}); generating it again")
        return None
