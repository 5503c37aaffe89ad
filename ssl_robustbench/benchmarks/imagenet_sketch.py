"""ImageNet-Sketch (Wang et al., "Learning Robust Global Representations by Penalizing Local Predictive Power",
NeurIPS 2019): 50,889 black-and-white sketches, 50 per ImageNet-1k class. Layout: ``<root>/<wnid>/*.JPEG``, or the
archive's ``<root>/sketch/<wnid>/``; scored with all 1000 logits."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ssl_robustbench.benchmarks.base import BENCHMARKS, Condition
from ssl_robustbench.benchmarks.released_sets import ReleasedSet, ReleasedSetConfig


@dataclasses.dataclass(frozen=True)
class ImageNetSketchConfig(ReleasedSetConfig):
    """The ImageNet-Sketch suite (section ``sketch``): ``root`` the released ``sketch/`` folder or its parent."""

    SECTION = "sketch"


@BENCHMARKS.register("sketch")
class ImageNetSketch(ReleasedSet):
    name = section = "sketch"
    title = "ImageNet-Sketch"
    Config = ImageNetSketchConfig
    shifted_key = "sketch:sketches"

    def shifted(self, root: Path, condition: Condition, ctx) -> Any:
        return self.folder(root / "sketch" if (root / "sketch").is_dir() else root, ctx)
