"""ImageNet-R (Hendrycks et al., "The Many Faces of Robustness", ICCV 2021): 30,000 renditions (art, cartoons,
sketches, toys, …) of 200 ImageNet classes. Layout: ``<root>/<wnid>/*.jpg`` (the released ``imagenet-r/``). As the
official ``eval.py``: the 1000-way head's logits restricted to the 200 classes; clean is the val images of those
classes on the same 200 logits ("ImageNet-200")."""

from __future__ import annotations

import dataclasses

from ssl_robustbench.benchmarks.base import BENCHMARKS
from ssl_robustbench.benchmarks.released_sets import ReleasedSet, ReleasedSetConfig


@dataclasses.dataclass(frozen=True)
class ImageNetRConfig(ReleasedSetConfig):
    """The ImageNet-R suite (section ``r``): ``root`` the released ``imagenet-r/`` folder."""

    SECTION = "r"


@BENCHMARKS.register("r")
class ImageNetR(ReleasedSet):
    name = section = "r"
    title = "ImageNet-R"
    Config = ImageNetRConfig
    shifted_key = "r:renditions"
    class_subset = "imagenet-r"
