"""COCO-PD: the perspective views of a COCO-format detection set with its annotations transformed along (MPD-OD,
Chhipa et al., ECCV 2024: "transforming boxes along with image"), in the spirit of ImageNet-PD.

For each view (left, right, top, bottom) × background (black, padded) the images are written under
``<out>/<PD folder>/<file_name>`` at their own size (no crop: detection images keep their aspect), and
``<out>/annotations/instances_<PD folder>.json`` holds the same ``images`` and ``categories`` with every annotation
moved by the same map (``transforms.geometric.MobiusPerspective``): a polygon ``segmentation`` traced through the
map (its edges become the map's curves) and clipped to the image, ``bbox`` the tight box of the warped object
(COCO's convention: the object's box, so the warped polygons' where they exist, else the warped box region's) and
``area`` the clipped polygons' (crowd RLE: the box's). An annotation whose region leaves the image is dropped. The
files load with ``pycocotools.coco.COCO``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors

from ssl_robustbench.config import is_finite_number
from ssl_robustbench.data.folders import load_rgb
from ssl_robustbench.data.generate import encode
from ssl_robustbench.data.shift_trees import PD_FOLDERS
from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import atomic_write_bytes, atomic_write_text, read_json
from ssl_robustbench.progress import progress_bar
from ssl_robustbench.transforms.geometric import Canvas, MobiusPerspective
from ssl_robustbench.transforms.regions import clip_polygon, polygon_area, tight_box


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_coco(path: Path) -> dict[str, Any]:
    """A COCO instances file, checked for what COCO-PD needs: images with a unique integer id, a relative
    file_name and positive integer width and height; annotations with a unique id, a known image_id, a finite
    bbox [x, y, w, h] with w, h ≥ 0 and, where present, a segmentation that is a list of polygons (each an even
    number ≥ 6 of finite coordinates) or an RLE dict. A malformed file is one UserError naming the entry."""
    data = read_json(path, what="COCO annotation file")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise UserError(f"{path} is not a COCO instances file (needs 'images' and 'annotations' lists)")
    ids: set[int] = set()
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or not {"id", "file_name", "width", "height"} <= set(img):
            raise UserError(f"{path}: images[{i}] needs id, file_name, width and height")
        if not _count(img["id"]) or img["id"] in ids:
            raise UserError(f"{path}: images[{i}].id {img['id']!r} must be an integer no other image has")
        if not _count(img["width"]) or not _count(img["height"]) or img["width"] < 1 or img["height"] < 1:
            raise UserError(f"{path}: images[{i}] width and height must be positive integers")
        name = img["file_name"]
        if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
            raise UserError(f"{path}: images[{i}].file_name {name!r} must be a relative path inside the image folder")
        ids.add(img["id"])
    annotation_ids: set[int] = set()
    for i, ann in enumerate(data["annotations"]):
        where = f"{path}: annotations[{i}]"
        if not isinstance(ann, dict):
            raise UserError(f"{where} must be an object")
        if "id" in ann and (not _count(ann["id"]) or ann["id"] in annotation_ids):
            raise UserError(f"{where}.id {ann['id']!r} must be an integer no other annotation has")
        annotation_ids.add(ann.get("id"))
        box = ann.get("bbox")
        if not isinstance(box, list) or len(box) != 4 or not all(is_finite_number(v) for v in box) or box[2] < 0 \
                or box[3] < 0:
            raise UserError(f"{where}.bbox must be [x, y, width, height]: finite numbers, non-negative sizes")
        if ann.get("image_id") not in ids or isinstance(ann.get("image_id"), bool):
            raise UserError(f"{where} refers to image {ann.get('image_id')!r}, not in 'images'")
        _check_segmentation(ann.get("segmentation"), where)
    return data


def _check_segmentation(segmentation: Any, where: str) -> None:
    if segmentation is None or isinstance(segmentation, dict):  # none, or crowd RLE (moved as its box)
        return
    if not isinstance(segmentation, list) or not all(isinstance(poly, list) for poly in segmentation):
        raise UserError(f"{where}.segmentation must be a list of polygons [[x1, y1, x2, y2, ...], ...] or an RLE "
                        "object")
    for k, poly in enumerate(segmentation):
        if len(poly) < 6 or len(poly) % 2 or not all(is_finite_number(v) for v in poly):
            raise UserError(f"{where}.segmentation[{k}] must hold an even number (at least 6) of finite "
                            f"coordinates, not {len(poly)} values")


def _move_annotation(ann: dict, view: MobiusPerspective, params: dict, height: int, width: int) -> dict | None:
    """The annotation under the view's map, or None when it leaves the image. A polygon segmentation is traced
    through the map (its straight edges become curves, one point per pixel of outline) and clipped to the image;
    ``bbox`` is the tight box of the warped polygons' visible part and ``area`` the clipped polygons' area. Without
    polygons (crowd RLE, or none) the box region stands for the object."""
    canvas = Canvas(height, width)
    polygons = ann.get("segmentation")
    if isinstance(polygons, list) and polygons:
        shapes = [np.asarray(poly, dtype=np.float64).reshape(-1, 2) for poly in polygons]
        extreme = np.concatenate([view.visible_region(params, shape, canvas) for shape in shapes])
        moved = []
        for shape in shapes:
            clipped = clip_polygon(view.outline(params, shape, height, width, step=1.0), width, height)
            if len(clipped) >= 3 and polygon_area(clipped) > 0:
                moved.append([round(float(v), 2) for v in clipped.reshape(-1)])
        box = tight_box(extreme)
        if not moved or box is None:
            return None
        return dict(ann, segmentation=moved, bbox=_xywh(box),
                    area=round(sum(polygon_area(np.asarray(poly).reshape(-1, 2)) for poly in moved), 2))
    x, y, w, h = ann["bbox"]
    box = tight_box(view.visible_region(params, np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]]), canvas))
    if box is None:
        return None
    moved_box = _xywh(box)
    return dict(ann, bbox=moved_box, area=round(moved_box[2] * moved_box[3], 2))


def _xywh(box: list[float]) -> list[float]:
    return [round(box[0], 2), round(box[1], 2), round(box[2] - box[0], 2), round(box[3] - box[1], 2)]


def write_coco_pd(annotations: Path, images: Path, out: Path, *, magnitude: float, d: float, limit: int | None = None,
                  device: torch.device | str = "cpu") -> list[str]:
    """Writes COCO-PD under ``out`` (see the module docstring) for the file's first ``limit`` images (all by
    default), warping pixels on ``device``; returns the view folders written."""
    data = read_coco(annotations)
    if limit is not None:
        data["images"] = data["images"][:limit]
        kept = {img["id"] for img in data["images"]}
        data["annotations"] = [ann for ann in data["annotations"] if ann["image_id"] in kept]
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
            picture = torch.from_numpy(np.array(load_rgb(str(source)))).permute(2, 0, 1).to(device)
            height, width = picture.shape[-2:]
            if (width, height) != (img["width"], img["height"]):
                raise UserError(f"{source} is {width}×{height}, but {annotations} says "
                                f"{img['width']}×{img['height']}")
            for folder, view in views.items():
                warped = view.transform(tv_tensors.Image(picture), params[folder])
                atomic_write_bytes(out / folder / Path(str(img["file_name"])).with_suffix(".png"),
                                   encode(warped.cpu().float() / 255, "PNG"))
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
