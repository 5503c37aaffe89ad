"""ImageFolder trees (ImageNet train/val with wnid folders, or any class-per-folder tree), validated up front."""

from __future__ import annotations

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


class CheckedImageFolder(ImageFolder):
    """``torchvision.datasets.ImageFolder`` with clear errors and an optional fixed class index.

    Args:
        root: directory with one sub-folder per class.
        transform: image transform.
        class_index: fixed class names in index order (e.g. the 1000 ImageNet wnids); the tree may hold a subset,
            and a folder outside the index is an error. ``None``: the sorted folder names.
    """

    def __init__(self, root: Path, *, transform: Callable | None = None, class_index: list[str] | None = None) -> None:
        self._class_index = class_index
        root = Path(root)
        if not root.is_dir():
            raise UserError(f"image folder not found: {root}")
        try:
            super().__init__(str(root), transform=transform, loader=load_rgb)
        except FileNotFoundError as err:  # torchvision: a class folder without image files
            raise UserError(f"image folder {root}: {str(err).splitlines()[0]}") from None
        self.classes = list(class_index) if class_index is not None else self.classes

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        folders = sorted(e.name for e in Path(directory).iterdir() if e.is_dir())
        if not folders:
            raise UserError(f"no class folders in {directory}")
        for name in folders:
            # images anywhere below the class folder count, as ImageFolder walks it; a directory named x.jpg not
            if not any(f.suffix.lower() in IMG_EXTENSIONS and f.is_file() for f in (Path(directory) / name).rglob("*")):
                raise UserError(f"class folder {Path(directory) / name} holds no image files")
        if self._class_index is None:
            return folders, {c: i for i, c in enumerate(folders)}
        index = {c: i for i, c in enumerate(self._class_index)}
        unknown = [f for f in folders if f not in index]
        if unknown:
            raise UserError(f"folder {unknown[0]!r} in {directory} is not an ImageNet wnid (e.g. n01440764)")
        return folders, {c: index[c] for c in folders}
