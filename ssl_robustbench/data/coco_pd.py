"""COCO-PD: the perspective views of a COCO-format detection set with its annotations transformed along (MPD-OD,
Chhipa et al., ECCV 2024: "transforming boxes along with image"), in the spirit of ImageNet-PD.

For each view (left, right, top, bottom) × background (black, padded) the images are written under
``<out>/<PD folder>/<file_name>`` at their own size (no crop: detection images keep their aspect), and
``<out>/annotations/instances_<PD folder>.json`` holds the same ``images`` and ``categories`` with every annotation
moved by the same map (``transforms.geometric.MobiusPerspective``): ``bbox`` the tight box of the warped box
region, polygon ``segmentation`` mapped point by point and clipped to the image, ``area`` the clipped polygon's
(for crowd RLE annotations, the box's). An annotation whose region leaves the image is dropped. The files load
with ``pycocotools.coco.COCO``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors

from ssl_robustbench.data.folders import load_rgb
from ssl_robustbench.data.generate import encode
from ssl_robustbench.data.shift_trees import PD_FOLDERS
from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import atomic_write_bytes, atomic_write_text, read_json
from ssl_robustbench.progress import progress_bar
from ssl_robustbench.transforms.geometric import MobiusPerspective, _clip_polygon


def read_coco(path: Path) -> dict[str, Any]:
    """A COCO instances file, checked for what COCO-PD needs (images with id, file_name, width, height;
    annotations with image_id and bbox [x, y, w, h]); a malformed one is a UserError naming the entry."""
    data = read_json(path, what="COCO annotation file")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise UserError(f"{path} is not a COCO instances file (needs 'images' and 'annotations' lists)")
    ids = set()
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or not {"id", "file_name", "width", "height"} <= set(img):
            raise UserError(f"{path}: images[{i}] needs id, file_name, width and height")
        name = str(img["file_name"])
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise UserError(f"{path}: images[{i}].file_name {name!r} must be a relative path inside the image folder")
        ids.add(img["id"])
    for i, ann in enumerate(data["annotations"]):
        box = ann.get("bbox") if isinstance(ann, dict) else None
        if not isinstance(box, list) or len(box) != 4 or not all(isinstance(v, (int, float)) for v in box) \
                or box[2] < 0 or box[3] < 0:
            raise UserError(f"{path}: annotations[{i}].bbox must be [x, y, width, height] with non-negative sizes")
        if ann.get("image_id") not in ids:
            raise UserError(f"{path}: annotations[{i}] refers to image {ann.get('image_id')!r}, not in 'images'")
    return data


def _polygon_area(points: list[list[float]]) -> float:
    return abs(sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(points, points[1:] + points[:1], strict=True))) / 2


def _move_annotation(ann: dict, view: MobiusPerspective, params: dict, height: int, width: int) -> dict | None:
    """The annotation under the view's map, or None when it leaves the image."""
    x, y, w, h = ann["bbox"]
    boxes = tv_tensors.BoundingBoxes(torch.tensor([[x, y, w, h]], dtype=torch.float64),
                                     format=tv_tensors.BoundingBoxFormat.XYWH, canvas_size=(height, width))
    moved_box = view.transform(boxes, params)[0].tolist()
    if moved_box[2] < 1e-3 or moved_box[3] < 1e-3:
        return None
    out = dict(ann, bbox=[round(v, 2) for v in moved_box])
    polygons = ann.get("segmentation")
    if isinstance(polygons, list) and polygons:
        moved = []
        for poly in polygons:
            pts = torch.tensor(poly, dtype=torch.float64).reshape(-1, 2) - 0.5  # edge → pixel-index coordinates
            mapped = view.move_points(params, pts, height, width) + 0.5
            clipped = _clip_polygon(mapped.numpy(), width, height)
            if len(clipped) >= 3:
                moved.append([round(float(v), 2) for v in clipped.reshape(-1)])
        if not moved:
            return None
        out["segmentation"] = moved
        out["area"] = round(sum(_polygon_area([poly[i:i + 2] for i in range(0, len(poly), 2)]) for poly in moved), 2)
    else:  # crowd RLE (or none): the box stands for the region
        out["area"] = round(moved_box[2] * moved_box[3], 2)
    return out


def write_coco_pd(annotations: Path, images: Path, out: Path, *, magnitude: float, d: float) -> list[str]:
    """Writes COCO-PD under ``out`` (see the module docstring); returns the view folders written."""
    data = read_coco(annotations)
    by_image: dict[Any, list[dict]] = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    views = {folder: MobiusPerspective(view=view_name, high=magnitude, d=d, background=background)
             for (view_name, background), folder in PD_FOLDERS.items()}
    params = {folder: {"apply": True, **view.sample()} for folder, view in views.items()}
    moved_annotations: dict[str, list[dict]] = {folder: [] for folder in views}
    with progress_bar(total=len(data["images"]), description="generate coco-pd") as advance:
        for img in data["images"]:  # each image decoded once, then warped into every view
            source = images / str(img["file_name"])
            picture = torch.from_numpy(np.array(load_rgb(str(source)))).permute(2, 0, 1)
            height, width = picture.shape[-2:]
            if (width, height) != (img["width"], img["height"]):
                raise UserError(f"{source} is {width}×{height}, but {annotations} says "
                                f"{img['width']}×{img['height']}")
            for folder, view in views.items():
                warped = view.transform(tv_tensors.Image(picture), params[folder])
                atomic_write_bytes(out / folder / Path(str(img["file_name"])).with_suffix(".png"),
                                   encode(warped.float() / 255, "PNG"))
                for ann in by_image.get(img["id"], []):
                    moved = _move_annotation(ann, view, params[folder], height, width)
                    if moved is not None:
                        moved_annotations[folder].append(moved)
            advance(1)
    images_out = [dict(img, file_name=str(Path(str(img["file_name"])).with_suffix(".png"))) for img in data["images"]]
    written = []
    for (view_name, background), folder in PD_FOLDERS.items():
        result = {k: v for k, v in data.items() if k not in ("images", "annotations")}
        result.update(images=images_out, annotations=moved_annotations[folder])
        result["info"] = dict(data.get("info") or {}, description=f"COCO-PD {folder}: {view_name} view, "
                              f"{background} background, |c| = {magnitude}, d = {d} (ssl-robustbench)")
        atomic_write_text(out / "annotations" / f"instances_{folder}.json", json.dumps(result))
        written.append(folder)
    return written
