"""ImageNet-Sketch (Wang et al., "Learning Robust Global Representations by Penalizing Local Predictive Power",
NeurIPS 2019): 50,889 black-and-white sketches, 50 per ImageNet-1k class. Layout: ``<root>/<wnid>/*.JPEG``, or the
archive's ``<root>/sketch/<wnid>/``; scored with all 1000 logits."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ssl_robustbench.benchmarks.base import BENCHMARKS, CLEAN, Condition, SuiteOption
from ssl_robustbench.benchmarks.released_sets import LIMIT, ROOT_HELP, ReleasedSet, ReleasedSetConfig


@dataclasses.dataclass(frozen=True)
class ImageNetSketchConfig(ReleasedSetConfig):
    """The ImageNet-Sketch suite (section ``sketch``): ``root`` the released ``sketch/`` folder or its parent."""


@BENCHMARKS.register("sketch")
class ImageNetSketch(ReleasedSet):
    name = section = "sketch"
    title = "ImageNet-Sketch"
    Config = ImageNetSketchConfig
    options = (SuiteOption("--sketch-root", "root", ROOT_HELP.format("ImageNet-Sketch")), LIMIT)

    def conditions(self, cfg: Any) -> list[Condition]:
        return [CLEAN, Condition("sketch:sketches")]

    def shifted(self, root: Path, condition: Condition, ctx) -> Any:
        return self.folder(root / "sketch" if (root / "sketch").is_dir() else root, ctx)
