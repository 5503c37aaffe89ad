"""``robustbench augment preview``: a PNG grid showing what augmentations and views do to real images."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from torchvision.utils import make_grid

from ssl_robustbench.fileio import atomic_write_bytes
from ssl_robustbench.transforms.augment import AUGMENTATIONS
from ssl_robustbench.transforms.views import ViewGenerator, ViewSpec, preset


def preview_rows(x: torch.Tensor, augs: list[str], *, method: str, view_size: int, seed: int
                 ) -> list[tuple[str, torch.Tensor]]:
    """Labelled rows: the images, each augmentation alone (its preset, applied to every image), and a full
    view of the method's pipeline with all of them inserted."""
    rows = [("original", x)]
    for name in augs:
        ins = preset(name, method)
        g = torch.Generator(device=x.device).manual_seed(seed)
        settings = ", ".join(f"{k} {v}" for k, v in dict(ins.args).items() if k != "p")
        rows.append((f"{name} ({method} preset): {settings}, applied to every image",
                     AUGMENTATIONS.get(name)(**(dict(ins.args) | {"p": 1.0}))(x, g)))
    views = ViewGenerator([ViewSpec("global", 2, size=view_size)], default_size=view_size, color_strength=1.0,
                          extra=tuple(preset(name, method) for name in augs))
    g = torch.Generator(device=x.device).manual_seed(seed)
    for i, v in enumerate(views(x, g)):
        v = torch.nn.functional.interpolate(v, size=x.shape[-2:], mode="nearest") if v.shape != x.shape else v
        rows.append((f"{method} view {i + 1}" + (f" + {', '.join(augs)}" if augs else ""), v))
    return rows


def save_grid(rows: list[tuple[str, torch.Tensor]], path: Path, *, label_width: int = 260) -> None:
    """One row per entry, its label on the left, written atomically as PNG."""
    strips = []
    for label, images in rows:
        grid = make_grid(images.clamp(0, 1).cpu(), nrow=len(images), padding=2, pad_value=1.0)
        strip = Image.fromarray((grid.permute(1, 2, 0).numpy() * 255).round().astype("uint8"))
        canvas = Image.new("RGB", (label_width + strip.width, strip.height), "white")
        canvas.paste(strip, (label_width, 0))
        lines = textwrap.wrap(label, max(8, (label_width - 8) // 6))  # the default bitmap font: ~6 px a letter
        top = strip.height // 2 - 6 * len(lines)
        for k, line in enumerate(lines):  # the whole label, wrapped: never cut
            ImageDraw.Draw(canvas).text((4, top + 12 * k), line, fill="black")
        strips.append(canvas)
    out = Image.new("RGB", (strips[0].width, sum(s.height for s in strips)), "white")
    top = 0
    for s in strips:
        out.paste(s, (0, top))
        top += s.height
    buffer = io.BytesIO()
    out.save(buffer, "PNG")
    atomic_write_bytes(Path(path), buffer.getvalue())
