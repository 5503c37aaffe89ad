"""``robustbench augment preview``: a PNG grid showing what augmentations and views do to real images."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torchvision.utils import make_grid

from ssl_robustbench.fileio import atomic_write_bytes
from ssl_robustbench.transforms.augment import AUGMENTATIONS
from ssl_robustbench.transforms.geometric import LogConformal, MobiusPerspective
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


#: the geometric transform of each augmentation that has one (boxes and points move with the image)
GEOMETRIC = {"mpd": MobiusPerspective, "lcm": LogConformal}


def annotated_rows(x: torch.Tensor, augs: list[str], *, seed: int) -> list[tuple[str, torch.Tensor]]:
    """Rows showing how boxes and key points move: a lattice of 4 boxes and 5 points drawn on each image, then,
    per augmentation with a geometric transform (``transforms/geometric.py``), each image warped with its own draw
    and the moved boxes (red) and points (yellow) drawn on the view."""
    from torchvision import tv_tensors

    h, w = x.shape[-2:]
    boxes = torch.tensor([[0.1 * w, 0.1 * h, 0.45 * w, 0.45 * h], [0.55 * w, 0.1 * h, 0.9 * w, 0.45 * h],
                          [0.1 * w, 0.55 * h, 0.45 * w, 0.9 * h], [0.55 * w, 0.55 * h, 0.9 * w, 0.9 * h]])
    points = torch.tensor([[0.5 * (w - 1), 0.5 * (h - 1)], [0.2 * w, 0.5 * h], [0.8 * w, 0.5 * h],
                           [0.5 * w, 0.2 * h], [0.5 * w, 0.8 * h]])
    rows = [("original, with boxes (red) and points (yellow)", _draw(x, [boxes] * len(x), [points] * len(x)))]
    torch.manual_seed(seed)
    for name in augs:
        if name not in GEOMETRIC:
            continue
        transform = GEOMETRIC[name](p=1.0)
        views, moved_boxes, moved_points = [], [], []
        for image in x:
            view, b, k = transform(tv_tensors.Image(image),
                                   tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(h, w)),
                                   tv_tensors.KeyPoints(points, canvas_size=(h, w)))
            views.append(view.as_subclass(torch.Tensor))
            moved_boxes.append(b.as_subclass(torch.Tensor))
            moved_points.append(k.as_subclass(torch.Tensor))
        rows.append((f"{name} ({type(transform).__name__}): boxes and points moved with the image",
                     _draw(torch.stack(views), moved_boxes, moved_points)))
    return rows


def _draw(x: torch.Tensor, boxes: list[torch.Tensor], points: list[torch.Tensor]) -> torch.Tensor:
    """The images with their boxes and points drawn in (PIL), back as [B, 3, H, W] in [0, 1]."""
    out = []
    for image, b, k in zip(x, boxes, points, strict=True):
        pil = Image.fromarray((image.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype("uint8"))
        draw = ImageDraw.Draw(pil)
        for x1, y1, x2, y2 in b.tolist():
            if x2 - x1 >= 1 and y2 - y1 >= 1:
                draw.rectangle((x1, y1, x2 - 1, y2 - 1), outline=(230, 30, 30))
        for px, py in k.tolist():
            draw.ellipse((px - 1.5, py - 1.5, px + 1.5, py + 1.5), fill=(250, 220, 0))
        out.append(torch.from_numpy(np.array(pil)).permute(2, 0, 1).float() / 255)
    return torch.stack(out)


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
