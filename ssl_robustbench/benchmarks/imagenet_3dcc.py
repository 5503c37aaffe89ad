"""ImageNet-3DCC (Kar et al., "3D Common Corruptions and Data Augmentation", CVPR 2022): 12 corruptions that use
the scene's 3D geometry, at 5 severities, of the ImageNet val images; layout ``<root>/<corruption>/<severity>/
<wnid>/*`` (the same as ImageNet-C).

By default the suite follows RobustBench's evaluation (``robustbench/eval.py`` and ``data.py`` at 78fcc9e): its
5,000 val images (``helper_files/imagenet_test_image_ids.txt``, shipped as
``data/class_lists/robustbench-imagenet-5000.txt``) in its order, its corruption order (``CORRUPTIONS_3DCC``), its
input — "for corruptions (2d and 3d) we use only resizing to 224x224" (``PREPROCESSINGS['Res224']``, a bilinear
``Resize([224, 224])``; the released images are 224² already) — then a center crop to the model's input, and its
aggregate: the mean accuracy over corruptions × severities (``3dcc:all`` ``mean_top1``). Clean is the same 5,000
val images. ``3dcc.images=all`` scores every image of the tree instead (recorded in the protocol). RobustBench's
3DCC mCE needs AlexNet's 3DCC accuracies (its ``unaggregated_results_3d.csv``), which are not shipped: not reported.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset
from torchvision.transforms import v2

from ssl_robustbench.benchmarks.base import BENCHMARKS, CLEAN, Condition
from ssl_robustbench.benchmarks.released_sets import CLASS_LISTS, ReleasedSet, ReleasedSetConfig
from ssl_robustbench.data import subset
from ssl_robustbench.errors import UserError

#: RobustBench's ``CORRUPTIONS_3DCC`` order
CORRUPTIONS_3D = ("near_focus", "far_focus", "bit_error", "color_quant", "flash", "fog_3d", "h265_abr", "h265_crf",
                  "iso_noise", "low_light", "xy_motion_blur", "z_motion_blur")
IMAGE_SETS = ("robustbench-5000", "all")
#: RobustBench's input for corruption benchmarks (``PREPROCESSINGS['Res224']``)
ROBUSTBENCH_INPUT = ("RobustBench's corruptions input: Resize([224, 224]) (bilinear; the released images are 224² "
                     "already), then a center crop to the model's input")


def robustbench_image_ids() -> list[str]:
    """RobustBench's 5,000 ImageNet val images as ``<wnid>/<file>``, in its order."""
    text = (CLASS_LISTS / "robustbench-imagenet-5000.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


@dataclasses.dataclass(frozen=True)
class ImageNet3DCCConfig(ReleasedSetConfig):
    """The ImageNet-3DCC suite (section ``3dcc``): ``root``, ``corruptions`` and ``severities`` to read, and which
    ``images`` of each condition: ``robustbench-5000`` (default) or ``all``."""

    SECTION = "3dcc"
    corruptions: tuple[str, ...] = CORRUPTIONS_3D
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    images: str = "robustbench-5000"

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [c for c in self.corruptions if c not in CORRUPTIONS_3D]
        if unknown:
            raise UserError(f"unknown 3DCC corruption {unknown[0]!r}; known: {', '.join(CORRUPTIONS_3D)}")
        if not self.corruptions or any(s not in (1, 2, 3, 4, 5) for s in self.severities) or not self.severities:
            raise UserError("3dcc.corruptions must be non-empty and 3dcc.severities within 1–5")
        if self.images not in IMAGE_SETS:
            raise UserError(f"3dcc.images must be one of {', '.join(IMAGE_SETS)}, not {self.images!r}")


@BENCHMARKS.register("3dcc")
class ImageNet3DCC(ReleasedSet):
    name = section = "3dcc"
    title = "ImageNet-3DCC"
    Config = ImageNet3DCCConfig

    def conditions(self, cfg: Any) -> list[Condition]:
        section = self.settings(cfg)
        return [CLEAN] + [Condition(f"3dcc:{c}", s, {"corruption": c}) for c in section.corruptions
                          for s in section.severities]

    def card_details(self, cfg: Any, ctx: Any) -> dict[str, Any]:
        return super().card_details(cfg, ctx) | {"input": ROBUSTBENCH_INPUT}

    def shifted(self, root: Path, condition: Condition, ctx) -> Any:
        images = self.folder(root / condition.params["corruption"] / str(condition.severity), ctx)
        images.transform = v2.Compose([v2.Resize([224, 224]), v2.ToImage(), v2.CenterCrop(ctx.input_size)])
        return self._listed(images, where=f"{condition.params['corruption']} severity {condition.severity}",
                            cfg=ctx.cfg)

    def clean_images(self, ctx) -> Dataset:
        """RobustBench's 5,000 of the val images (those the evaluation set has)."""
        return self._listed(super().clean_images(ctx), where="the evaluation set", cfg=ctx.cfg, partial=True)

    def _listed(self, images: Dataset, *, where: str, cfg: Any, partial: bool = False) -> Dataset:
        """RobustBench's 5,000 images of ``images`` in its order (all of them unless ``3dcc.images=all``); a tree
        that lacks some is an error naming the first, a limited evaluation set keeps those it has."""
        if self.settings(cfg).images == "all":
            return images
        base, positions = images, None
        if hasattr(images, "indices"):  # a fixed subset of a folder
            base, positions = images.dataset, list(images.indices)
        root = Path(base.root)
        index = {Path(p).relative_to(root).as_posix(): i for i, (p, _) in enumerate(base.samples)}
        if positions is not None:
            allowed = set(positions)
            index = {k: i for k, i in index.items() if i in allowed}
        ids = robustbench_image_ids()
        missing = [i for i in ids if i not in index]
        if missing and not partial:
            raise UserError(f"the 3DCC tree lacks {len(missing):,} of RobustBench's 5,000 images in {where} (first: "
                            f"{missing[0]}); give the whole release or score the tree as it is with "
                            "--set 3dcc.images=all")
        kept = [index[i] for i in ids if i in index]
        if not kept:
            raise UserError(f"{where} holds none of RobustBench's 5,000 images")
        return subset(base, kept)
