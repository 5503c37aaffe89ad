"""ImageNet-A (Hendrycks et al., "Natural Adversarial Examples", CVPR 2021): 7,500 real photos of 200 ImageNet
classes that ResNet-50s misclassify. Layout: ``<root>/<wnid>/*.jpg`` (the released ``imagenet-a/``). As the
official ``eval.py``: the 1000-way head's logits restricted to the 200 classes (``indices_in_1k``); clean is the
val images of those classes on the same logits."""

from __future__ import annotations

import dataclasses

from ssl_robustbench.benchmarks.base import BENCHMARKS
from ssl_robustbench.benchmarks.released_sets import ReleasedSet, ReleasedSetConfig


@dataclasses.dataclass(frozen=True)
class ImageNetAConfig(ReleasedSetConfig):
    """The ImageNet-A suite (section ``a``): ``root`` the released ``imagenet-a/`` folder."""

    SECTION = "a"


@BENCHMARKS.register("a")
class ImageNetA(ReleasedSet):
    name = section = "a"
    title = "ImageNet-A"
    Config = ImageNetAConfig
    shifted_key = "a:natural-adversarial"
    class_subset = "imagenet-a"
