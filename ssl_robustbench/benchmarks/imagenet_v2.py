"""ImageNet-V2 (Recht et al., "Do ImageNet Classifiers Generalize to ImageNet?", ICML 2019): three new test sets
of 10,000 images, 10 per class, sampled as ImageNet's val set was. Layout as released:
``<root>/imagenetv2-matched-frequency-format-val/<class index>/*.jpeg`` (and ``-threshold0.7-`` and
``-top-images-``), the class folders named by their ImageNet-1k index 0–999; scored with all 1000 logits.
``variants`` picks the sets (default matched-frequency, the one papers report as "ImageNet-V2")."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ssl_robustbench.benchmarks.base import BENCHMARKS, CLEAN, Condition
from ssl_robustbench.benchmarks.released_sets import ReleasedSet, ReleasedSetConfig
from ssl_robustbench.errors import UserError

#: variant → the released folder
VARIANTS = {"matched-frequency": "imagenetv2-matched-frequency-format-val",
            "threshold-0.7": "imagenetv2-threshold0.7-format-val",
            "top-images": "imagenetv2-top-images-format-val"}


@dataclasses.dataclass(frozen=True)
class ImageNetV2Config(ReleasedSetConfig):
    """The ImageNet-V2 suite (section ``v2``): ``root`` the folder holding the released variant folders."""

    SECTION = "v2"
    variants: tuple[str, ...] = ("matched-frequency",)

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants:
            raise UserError(f"v2.variants must be some of {', '.join(VARIANTS)}"
                            + (f", not {unknown[0]!r}" if unknown else ""))


@BENCHMARKS.register("v2")
class ImageNetV2(ReleasedSet):
    name = section = "v2"
    title = "ImageNet-V2"
    Config = ImageNetV2Config

    def conditions(self, cfg: Any) -> list[Condition]:
        return [CLEAN] + [Condition(f"v2:{v}", 0, {"variant": v}) for v in cfg.v2.variants]

    def shifted(self, root: Path, condition: Condition, ctx) -> Any:
        return self.folder(root / VARIANTS[condition.params["variant"]], ctx,
                           class_index=[str(i) for i in range(1000)])
