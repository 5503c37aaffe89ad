"""Evaluation preprocessing from a zoo card: Resize + CenterCrop on uint8 pixels (the loaders of ``data`` turn each
batch into floats in [0, 1]). Light to import (torchvision only when a transform is built): zoo cards use it."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

#: the interpolations a card may name (torchvision's InterpolationMode of the same name)
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")


@dataclasses.dataclass(frozen=True)
class Preprocess:
    """How images reach the model (normalization excluded: it lives inside the model).

    Args:
        input_size: side of the square model input.
        crop_pct: center-crop fraction; the resize side is ``floor(input_size / crop_pct)`` as timm's eval
            transform computes it (0.875 → 256 for 224; 0.9 → 248, not 249; 0.95 → 235).
        interpolation: ``bilinear`` or ``bicubic`` (as the checkpoint's card says).
    """

    input_size: int = 224
    crop_pct: float = 0.875
    interpolation: str = "bilinear"

    @property
    def resize_size(self) -> int:
        return math.floor(self.input_size / self.crop_pct)

    def transform(self, native_size: int | None = None) -> Callable:
        """The eval transform for images of ``native_size`` (None: variable-size photos, e.g. ImageNet JPEGs): a PIL
        image → a uint8 [3, H, W] tensor (a float tensor stays float).

        Images already at ``input_size`` (CIFAR for a 32-px model, the embedded set for a 64-px model) are only
        converted; everything else is resized and center-cropped on uint8 pixels, as the reference eval transforms
        (timm, torchvision: PIL Resize + CenterCrop, then ToTensor) do: within one grey level of PIL's output (a
        float resize differs by up to ~4 levels with bicubic overshoot) and about 2× faster on ImageNet-size JPEGs.
        The conversion to float is left to the loader (``data.ImageLoader``): loader workers send a quarter of the
        bytes, and the main process converts a whole batch at once.
        """
        from torchvision.transforms import v2

        if native_size == self.input_size:
            return v2.ToImage()
        return v2.Compose([
            v2.ToImage(),
            v2.Resize(self.resize_size, interpolation=v2.InterpolationMode(self.interpolation), antialias=True),
            v2.CenterCrop(self.input_size),
        ])
