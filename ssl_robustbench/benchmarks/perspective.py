"""The ImageNet-PD suite ``pd`` (Chhipa et al., "Möbius Transform for Mitigating Perspective Distortions in
Representation Learning", ECCV 2024): left, right, top and bottom perspective views, each with a black background
(zeros outside the warped image) and a padded one (border pixels), from the released tree (``pd.root``) or
generated on the fly with the batched Möbius warp f(z) = z / (cz + d) (``transforms/mobius.py``).

Protocol (one for on-the-fly views and ``robustbench generate pd`` trees): on ImageNet-layout photos each view
warps the release's 224² input (PIL ``Resize(256, bilinear)`` + ``CenterCrop(224)``, as ImageNet-C was made and as
the MPD paper evaluates at 224²), the result is truncated to uint8 as ``mobius-mpd`` saves it, and the model gets
its center crop; clean is the same 224² input. Whether the released ImageNet-PD warped the crop or the full photo
is not published (no generation script; the dataset card gives none): a released tree is read as given, and its
224² images are only center-cropped. "padded" is ``mobius-mpd``'s border clamp; the authors' MPD training code
also has a reflection-padded variant, and which one the release used is not established either.

A view is set by the axis and sign of c: right (+|c|, 0), left (−|c|, 0), bottom (0, +|c|), top (0, −|c|), with
|c| = ``pd.magnitude`` (default 0.3, the strongest distortion of MPD's default |c| ~ U(0.1, 0.3)) and ``pd.d``
(default 1). These defaults are a guess: the authors publish no generation script for ImageNet-PD (their training
code draws |c| ~ U(0.1, 0.3) with d = 1, or U(0.2, 0.4) with d = 0.75, and one padded variant pads by
reflection). To compare generated and released numbers, evaluate both (``pd.root`` set and unset).

Summary rows: ``pd:black`` and ``pd:padded`` (mean over the four views), ``pd:all`` mean and its ``drop`` from
the clean top-1 of the same images.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ssl_robustbench.benchmarks.base import (
    BENCHMARKS,
    CLEAN,
    BatchTransform,
    Condition,
    EvalContext,
    Measurement,
    ReleasedOrOnTheFly,
)
from ssl_robustbench.config import bounded, check_fields
from ssl_robustbench.data.shift_trees import imagenet_pd_subset, photo_transform
from ssl_robustbench.errors import UserError
from ssl_robustbench.transforms.mobius import BACKGROUNDS, mobius_grid

VIEWS = {"right": (1.0, 0.0), "left": (-1.0, 0.0), "bottom": (0.0, 1.0), "top": (0.0, -1.0)}


@functools.lru_cache(maxsize=64)
def _view_grid(view: str, background: str, magnitude: float, d: float, height: int, width: int,
               device: torch.device) -> torch.Tensor:
    """The sampling grid [1, H, W, 2] of one view (the same c for every image, so computed once)."""
    sx, sy = VIEWS[view]
    c_real = torch.tensor([sx * magnitude], device=device)
    c_imag = torch.tensor([sy * magnitude], device=device)
    return mobius_grid(c_real, c_imag, d, height, width, padded=background == "padded")


def perspective_view(x: torch.Tensor, view: str, background: str, *, magnitude: float, d: float) -> torch.Tensor:
    """One ImageNet-PD view of a batch [B, 3, H, W] in [0, 1] (``mobius_warp`` with the view's fixed c), brought
    to the uint8 grid by truncation, as the authors' ``mobius-mpd`` does (``to_pil_image``), and as
    ``robustbench generate pd`` stores it."""
    if background not in BACKGROUNDS:
        raise UserError(f"background must be one of {', '.join(BACKGROUNDS)}, not {background!r}")
    grid = _view_grid(view, background, float(magnitude), float(d), x.shape[-2], x.shape[-1], x.device)
    warped = F.grid_sample(x, grid.to(x.dtype).expand(len(x), -1, -1, -1), mode="bilinear", padding_mode="zeros",
                           align_corners=True)
    return warped.clamp_(0, 1).mul_(255).floor_().div_(255)


@dataclasses.dataclass(frozen=True)
class PerspectiveConfig:
    """The ImageNet-PD suite (section ``pd``): left/right/top/bottom Möbius views with black or padded background.

    ``root``: a released tree holding ``PD-L``, ``PD-R``, ``PD-T``, ``PD-B`` (black) and ``PD-LI`` … ``PD-BI``
    (padded), each an ImageFolder of the val set; unset: the views are generated on the fly with |c| =
    ``magnitude`` and ``d``. ``limit``: images per condition.
    """

    root: str | None = None
    magnitude: float = bounded(0.3, low=0.0, low_open=True)
    d: float = bounded(1.0)
    views: tuple[str, ...] = ("left", "right", "top", "bottom")
    backgrounds: tuple[str, ...] = ("black", "padded")
    limit: int | None = bounded(None, low=1)

    def __post_init__(self) -> None:
        unknown = [v for v in self.views if v not in VIEWS] + [b for b in self.backgrounds if b not in BACKGROUNDS]
        if unknown:
            raise UserError(f"unknown pd view or background {unknown[0]!r}; views: {', '.join(VIEWS)}, "
                            f"backgrounds: {', '.join(BACKGROUNDS)}")
        check_fields(self, "pd")
        if self.d == 0:
            raise UserError("config key 'pd.d' must be non-zero")


@BENCHMARKS.register("pd")
class PerspectiveBenchmark(ReleasedOrOnTheFly):
    """ImageNet-PD: 4 views × 2 backgrounds."""

    name = "pd"
    section = "pd"
    release_input = True  # the views of the 224² crop, as the release's classifiers were evaluated
    Config = PerspectiveConfig

    def check(self, cfg: Any) -> None:
        if cfg.pd.root is not None and not Path(cfg.pd.root).is_dir():
            raise UserError(f"ImageNet-PD root not found: {cfg.pd.root}")

    def conditions(self, cfg: Any) -> list[Condition]:
        return [CLEAN] + [Condition(f"pd:{v}/{b}", 0, {"view": v, "background": b})
                          for b in cfg.pd.backgrounds for v in cfg.pd.views]

    def released(self, root: Path, condition: Condition, ctx: EvalContext) -> Dataset:
        return imagenet_pd_subset(root, condition.params["view"], condition.params["background"],
                                  transform=photo_transform(ctx.preprocess), classes=list(ctx.clean.classes))

    def on_the_fly(self, condition: Condition, ctx: EvalContext) -> BatchTransform:
        pd = ctx.cfg.pd
        view, background = condition.params["view"], condition.params["background"]
        return lambda x, g: perspective_view(x, view, background, magnitude=pd.magnitude, d=pd.d)

    def summarize(self, top1: Mapping[Condition, float], *, n: int,
                  data: Mapping[str, Any]) -> Iterator[Measurement]:
        views = {c: v for c, v in top1.items() if "view" in c.params}
        groups = {f"pd:{b}": [v for c, v in views.items() if c.params["background"] == b] for b in BACKGROUNDS}
        groups["pd:all"] = list(views.values())
        for name, values in groups.items():
            if values:
                yield Measurement(name, 0, "mean_top1", sum(values) / len(values), n)
        if groups["pd:all"] and CLEAN in top1:
            yield Measurement("pd:all", 0, "drop", top1[CLEAN] - sum(groups["pd:all"]) / len(groups["pd:all"]), n)

    def aggregates(self, measured: list[Measurement]) -> dict[str, float]:
        """Mean top-1 over all PD subsets (ranks), over black and over padded backgrounds, and the drop."""
        keys = {("pd:all", "mean_top1"): "mean_top1", ("pd:black", "mean_top1"): "black",
                ("pd:padded", "mean_top1"): "padded", ("pd:all", "drop"): "drop"}
        found = {(m.condition, m.metric): m.value for m in measured}
        return {name: found[key] for key, name in keys.items() if key in found}
