"""ImageNet-3DCC (Kar et al., "3D Common Corruptions and Data Augmentation", CVPR 2022): 12 corruptions that use
the scene's 3D geometry, at 5 severities, of the ImageNet val images. Layout as RobustBench reads it:
``<root>/<corruption>/<severity>/<wnid>/*`` (the same as ImageNet-C); 224² images are only center-cropped.
Summary: ``3dcc:all`` ``mean_top1`` over corruptions × severities and its drop from clean."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ssl_robustbench.benchmarks.base import BENCHMARKS, CLEAN, Condition
from ssl_robustbench.benchmarks.released_sets import ReleasedSet, ReleasedSetConfig
from ssl_robustbench.errors import UserError

#: RobustBench's ``3DCC_CORRUPTIONS`` order
CORRUPTIONS_3D = ("near_focus", "far_focus", "fog_3d", "flash", "color_quant", "low_light", "xy_motion_blur",
                  "z_motion_blur", "iso_noise", "bit_error", "h265_abr", "h265_crf")


@dataclasses.dataclass(frozen=True)
class ImageNet3DCCConfig(ReleasedSetConfig):
    """The ImageNet-3DCC suite (section ``3dcc``): ``root``, ``corruptions`` and ``severities`` to read."""

    SECTION = "3dcc"
    corruptions: tuple[str, ...] = CORRUPTIONS_3D
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [c for c in self.corruptions if c not in CORRUPTIONS_3D]
        if unknown:
            raise UserError(f"unknown 3DCC corruption {unknown[0]!r}; known: {', '.join(CORRUPTIONS_3D)}")
        if not self.corruptions or any(s not in (1, 2, 3, 4, 5) for s in self.severities) or not self.severities:
            raise UserError("3dcc.corruptions must be non-empty and 3dcc.severities within 1–5")


@BENCHMARKS.register("3dcc")
class ImageNet3DCC(ReleasedSet):
    name = section = "3dcc"
    title = "ImageNet-3DCC"
    Config = ImageNet3DCCConfig

    def conditions(self, cfg: Any) -> list[Condition]:
        section = self.settings(cfg)
        return [CLEAN] + [Condition(f"3dcc:{c}", s, {"corruption": c}) for c in section.corruptions
                          for s in section.severities]

    def shifted(self, root: Path, condition: Condition, ctx) -> Any:
        return self.folder(root / condition.params["corruption"] / str(condition.severity), ctx)
