"""ImageFolder trees (ImageNet train/val with wnid folders, or any class-per-folder tree), validated up front."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS

from ssl_robustbench.errors import UserError


def imagenet_wnids() -> list[str]:
    """The 1000 ImageNet-1k wnids in class-index order (sorted, as every ImageNet checkpoint assumes)."""
    from timm.data import ImageNetInfo

    return list(ImageNetInfo().label_names())


def load_rgb(path: str) -> Image.Image:
    """Opens an image as RGB; an unreadable, truncated or corrupt file, or one past PIL's decompression-bomb
    limit (about 179 megapixels), is a UserError naming it."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as err:
        raise UserError(f"cannot read image {path}: {err}") from None


def class_folders(directory: Path) -> list[str]:
    """The class folders of an ImageFolder tree, sorted: sub-directories (or links to them) whose names do not begin
    with ``.`` (``.ipynb_checkpoints``, ``.DS_Store`` … are not classes)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"image folder not found: {directory}")
    return sorted(e.name for e in directory.iterdir() if e.is_dir() and not e.name.startswith("."))


class CheckedImageFolder(ImageFolder):
    """``torchvision.datasets.ImageFolder`` with clear errors, classes matched by name, hidden entries skipped and
    symbolic links followed with loop detection.

    Args:
        root: directory with one sub-folder per class.
        transform: image transform.
        class_index: the class names of the head in index order (the 1000 ImageNet wnids, or the training split's
            folders); the tree may hold a subset (``classes_present`` in its identity), and a folder outside the
            index is an error naming it and ``index_source``. ``None``: the sorted folder names.
        index_source: where ``class_index`` comes from, for the error message.
    """

    def __init__(self, root: Path, *, transform: Callable | None = None, class_index: list[str] | None = None,
                 index_source: str = "the ImageNet-1k wnids") -> None:
        self._class_index, self._index_source = class_index, index_source
        root = Path(root)
        if not root.is_dir():
            raise UserError(f"image folder not found: {root}")
        try:
            super().__init__(str(root), transform=transform, loader=load_rgb)
        except FileNotFoundError as err:  # torchvision: a class folder without image files
            raise UserError(f"image folder {root}: {str(err).splitlines()[0]}") from None
        present = len(self.classes)
        self.classes = list(class_index) if class_index is not None else self.classes
        if present < len(self.classes):  # a subset of the head's classes: recorded in the data identity
            self.identity = {"classes_present": present}

    @staticmethod
    def make_dataset(directory, class_to_idx, extensions=None, is_valid_file=None, allow_empty=False):
        """(path, class index) of every image below each class folder, in sorted order, skipping hidden entries;
        links are followed, and a directory reached twice (a link loop, or a link into another class) is an
        error naming the path."""
        samples, seen = [], set()
        for name in sorted(class_to_idx):
            for root, dirs, files in os.walk(os.path.join(directory, name), followlinks=True):
                real = os.path.realpath(root)
                if real in seen:
                    raise UserError(f"{root} is reached twice through symbolic links (a loop, or a link into "
                                    "another folder of the tree); remove the link")
                seen.add(real)
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for file in sorted(f for f in files if not f.startswith(".")):
                    if file.lower().endswith(IMG_EXTENSIONS):
                        samples.append((os.path.join(root, file), class_to_idx[name]))
        return samples

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        folders = class_folders(Path(directory))
        if not folders:
            raise UserError(f"no class folders in {directory}")
        for name in folders:
            # images anywhere below the class folder count, as ImageFolder walks it; a directory named x.jpg not
            if not any(f.suffix.lower() in IMG_EXTENSIONS and f.is_file() and not f.name.startswith(".")
                       for f in (Path(directory) / name).rglob("*")):
                raise UserError(f"class folder {Path(directory) / name} holds no image files")
        if self._class_index is None:
            return folders, {c: i for i, c in enumerate(folders)}
        index = {c: i for i, c in enumerate(self._class_index)}
        unknown = [f for f in folders if f not in index]
        if unknown:
            raise UserError(f"class folder {unknown[0]!r} in {directory} is not one of the classes the head scores "
                            f"({self._index_source}: {', '.join(self._class_index[:5])}"
                            f"{' …' if len(self._class_index) > 5 else ''}); a test class must have been trained on")
        return folders, {c: index[c] for c in folders}
