"""Readers for the released distribution-shift datasets, in their published layouts.

ImageNet-C (Hendrycks & Dietterich 2019): ``<root>/<corruption>/<severity>/<wnid>/*.JPEG`` or grouped
``<root>/<group>/<corruption>/<severity>/<wnid>/``; the images are 224² already, so only a center crop applies.
ImageNet-PD (Chhipa et al. 2024): ``<root>/PD-L``, ``PD-R``, ``PD-T``, ``PD-B`` (black background) and ``PD-LI`` …
``PD-BI`` (padded), each an ImageFolder of the validation set.
ImageNet-E (Li et al. 2023): ``<root>/labels.txt`` (``<image name>\\t<label>``), ``ori/`` and ``full/`` with JPEGs
and one folder per attribute edit with PNGs; an image of any subset is matched to its label by file stem.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.transforms import v2

from ssl_robustbench.data.folders import CheckedImageFolder, load_rgb
from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import read_text

PD_FOLDERS = {("left", "black"): "PD-L", ("right", "black"): "PD-R", ("top", "black"): "PD-T",
              ("bottom", "black"): "PD-B", ("left", "padded"): "PD-LI", ("right", "padded"): "PD-RI",
              ("top", "padded"): "PD-TI", ("bottom", "padded"): "PD-BI"}


def to_tensor_only() -> Callable:
    """A PIL image as a uint8 [3, H, W] tensor, nothing else (images taken as given; loaders make it float)."""
    return v2.ToImage()


def center_crop_only(size: int) -> Callable:
    """ImageNet-C's evaluation transform: the stored 224² image, center-cropped to the model's input size."""
    return v2.Compose([to_tensor_only(), v2.CenterCrop(size)])


#: ``make_imagenet_c.py`` (Hendrycks & Dietterich 2019) made ImageNet-C from the val JPEGs with
#: ``trn.Resize(256)`` (PIL, bilinear) and ``trn.CenterCrop(224)``, then the corruption and a JPEG-85 save
RELEASE_RESIZE, RELEASE_CROP = 256, 224
#: the input of the released sets' official evaluation (every image, 224² ones included), as a card records it
RELEASE_INPUT = ("the official evaluation scripts': PIL Resize(256, bilinear) + CenterCrop(224) on every image, then "
                 "a center crop to the model's input")


def release_transform(crop: int | None = None) -> Callable:
    """The released benchmark's input: PIL decode, PIL ``Resize(256, bilinear)``, ``CenterCrop(224)``, as uint8
    [3, 224, 224] — whatever the model's own preprocessing (a bicubic model sees the released image as it is);
    with ``crop``, then center-cropped to the model's input, per image (batches of the model's size: the 224²
    batches never exist)."""
    steps = [v2.Resize(RELEASE_RESIZE, interpolation=v2.InterpolationMode.BILINEAR), v2.CenterCrop(RELEASE_CROP),
             v2.ToImage()]
    return v2.Compose(steps + ([v2.CenterCrop(crop)] if crop is not None else []))


def release_view(ds: Dataset, crop: int | None = None) -> Dataset | None:
    """``ds`` (a photo folder, or a fixed subset of one) with the released benchmark's input transform
    (``release_transform(crop)``) instead of the model's; None for datasets that are not photo folders (the
    embedded set, CIFAR: already at their size)."""
    import copy

    from torch.utils.data import Subset

    if isinstance(ds, Subset):
        inner = release_view(ds.dataset, crop)
        if inner is None:
            return None
        out = copy.copy(ds)
        out.dataset = inner
        return out
    if not isinstance(ds, CheckedImageFolder):
        return None
    out = copy.copy(ds)
    out.transform = release_transform(crop)
    return out


def photo_transform(preprocess) -> Callable:
    """How a shift tree's images reach the model: images saved after the release's crop (224², as ImageNet-C and
    ``robustbench generate`` trees are) or at the input size are center-cropped to the input size, as ImageNet-C
    is read; other photos get the model's full eval transform."""
    full, crop = preprocess.transform(None), center_crop_only(preprocess.input_size)
    stored = {(RELEASE_CROP, RELEASE_CROP), (preprocess.input_size, preprocess.input_size)}
    return lambda img: crop(img) if img.size in stored else full(img)


def imagenet_c_dir(root: Path, corruption: str, severity: int, group: str) -> Path:
    """The folder of one ImageNet-C condition, flat or grouped layout."""
    root = Path(root)
    candidates = [root / corruption / str(severity), root / group / corruption / str(severity)]
    for path in candidates:
        if path.is_dir():
            return path
    raise UserError(f"ImageNet-C tree {root} has no {corruption} severity {severity} "
                    f"(looked for {candidates[0]} and {candidates[1]})")


def imagenet_c_condition(root: Path, corruption: str, severity: int, group: str, *, input_size: int,
                         classes: list[str]) -> Dataset:
    """One released ImageNet-C condition as a dataset (center crop only, labels by the clean set's classes)."""
    path = imagenet_c_dir(root, corruption, severity, group)
    return CheckedImageFolder(path, transform=center_crop_only(input_size), class_index=classes)


def imagenet_pd_subset(root: Path, view: str, background: str, *, transform: Callable, classes: list[str]) -> Dataset:
    """One released ImageNet-PD subset (e.g. ``PD-LI``: left view, padded background)."""
    path = Path(root) / PD_FOLDERS[view, background]
    if not path.is_dir():
        raise UserError(f"ImageNet-PD subset {PD_FOLDERS[view, background]} not found under {root}")
    return CheckedImageFolder(path, transform=transform, class_index=classes)


class EditedImages(Dataset):
    """One ImageNet-E subset: the images of ``root/<subset>`` with labels from ``labels.txt``."""

    def __init__(self, root: Path, subset: str, *, transform: Callable, classes: list[str]):
        self.transform = transform
        labels = read_edit_labels(Path(root) / "labels.txt", classes)
        folder = Path(root) / subset
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMG_EXTENSIONS)
        if not files:
            raise UserError(f"ImageNet-E subset {folder} holds no images")
        unlabeled = [p.name for p in files if p.stem not in labels]
        if unlabeled:
            raise UserError(f"{folder / unlabeled[0]} has no line in {Path(root) / 'labels.txt'}")
        self.samples = [(p, labels[p.stem]) for p in files]
        self.classes = classes

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[i]
        return self.transform(load_rgb(str(path))), label


def read_edit_labels(path: Path, classes: list[str]) -> dict[str, int]:
    """``labels.txt`` of ImageNet-E: ``<image name>\\t<label>`` per line, the label a class index or a class name
    (wnid); keyed by the image's stem (the edits are PNGs of the same names)."""
    if not path.is_file():
        raise UserError(f"ImageNet-E labels not found: {path}")
    index = {c: i for i, c in enumerate(classes)}
    out: dict[str, int] = {}
    for number, line in enumerate(read_text(path, what="ImageNet-E labels").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) != 2:
            raise UserError(f"{path}:{number}: expected '<image name>\\t<label>', got {line!r}")
        name, label = parts[0].strip(), parts[1].strip()
        if label.isdigit() and int(label) < len(classes):
            out[Path(name).stem] = int(label)
        elif label in index:
            out[Path(name).stem] = index[label]
        else:
            raise UserError(f"{path}:{number}: label {label!r} is neither a class index below {len(classes)} "
                            "nor a class name")
    return out


def edit_subsets(root: Path) -> list[str]:
    """The subsets of an ImageNet-E tree: ``ori`` first, then every other folder holding images, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"ImageNet-E root not found: {root}")
    found = sorted(p.name for p in root.iterdir()
                   if p.is_dir() and any(f.suffix.lower() in IMG_EXTENSIONS for f in p.iterdir()))
    if "ori" not in found:
        raise UserError(f"ImageNet-E tree {root} has no ori/ folder (found: {', '.join(found) or 'nothing'})")
    return ["ori"] + [s for s in found if s != "ori"]
