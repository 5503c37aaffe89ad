"""ImageNet-R (Hendrycks et al., "The Many Faces of Robustness", ICCV 2021): 30,000 renditions (art, cartoons,
sketches, toys, …) of 200 ImageNet classes. Layout: ``<root>/<wnid>/*.jpg`` (the released ``imagenet-r/``). As the
official ``eval.py``: the 1000-way head's logits restricted to the 200 classes; clean is the val images of those
classes on the same 200 logits ("ImageNet-200")."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ssl_robustbench.benchmarks.base import BENCHMARKS, CLEAN, Condition, SuiteOption
from ssl_robustbench.benchmarks.released_sets import LIMIT, ROOT_HELP, ReleasedSet, ReleasedSetConfig


@dataclasses.dataclass(frozen=True)
class ImageNetRConfig(ReleasedSetConfig):
    """The ImageNet-R suite (section ``r``): ``root`` the released ``imagenet-r/`` folder."""


@BENCHMARKS.register("r")
class ImageNetR(ReleasedSet):
    name = section = "r"
    title = "ImageNet-R"
    Config = ImageNetRConfig
    class_subset = "imagenet-r"
    options = (SuiteOption("--r-root", "root", ROOT_HELP.format("ImageNet-R")), LIMIT)

    def conditions(self, cfg: Any) -> list[Condition]:
        return [CLEAN, Condition("r:renditions")]

    def shifted(self, root: Path, condition: Condition, ctx) -> Any:
        return self.folder(root, ctx)
