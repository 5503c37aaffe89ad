"""The ImageNet-PD suite ``pd`` (Chhipa et al., "Möbius Transform for Mitigating Perspective Distortions in
Representation Learning", ECCV 2024): left, right, top and bottom perspective views, each with a black background
(zeros outside the warped image) and a padded one (border pixels), from the released tree (``pd.root``) or
generated on the fly with the batched Möbius warp f(z) = z / (cz + d) (``transforms/mobius.py``).

A view is set by the axis and sign of c: right (+|c|, 0), left (−|c|, 0), bottom (0, +|c|), top (0, −|c|), with
|c| = ``pd.magnitude`` (default 0.3, the strongest distortion of MPD's default |c| ~ U(0.1, 0.3)) and ``pd.d``
(default 1). The released subsets were made by the authors with their own per-image settings; to compare
generated and released numbers, evaluate both (``pd.root`` set and unset).

Summary rows: ``pd:black`` and ``pd:padded`` (mean over the four views), ``pd:all`` mean and its ``drop`` from
the clean top-1 of the same images.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ssl_robustbench.benchmarks.base import (
    BENCHMARKS,
    BatchTransform,
    Condition,
    EvalContext,
    Measurement,
    ReleasedOrOnTheFly,
)
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
    """One ImageNet-PD view of a batch [B, 3, H, W] in [0, 1] (``mobius_warp`` with the view's fixed c), rounded
    to the uint8 grid as the released images (and ``robustbench generate pd``) store it."""
    if background not in BACKGROUNDS:
        raise UserError(f"background must be one of {', '.join(BACKGROUNDS)}, not {background!r}")
    grid = _view_grid(view, background, float(magnitude), float(d), x.shape[-2], x.shape[-1], x.device)
    warped = F.grid_sample(x, grid.to(x.dtype).expand(len(x), -1, -1, -1), mode="bilinear", padding_mode="zeros",
                           align_corners=True)
    return warped.mul_(255).round_().div_(255)


@BENCHMARKS.register("pd")
class PerspectiveBenchmark(ReleasedOrOnTheFly):
    """ImageNet-PD: 4 views × 2 backgrounds."""

    name = "pd"
    section = "pd"

    def check(self, cfg: Any) -> None:
        pd = cfg.pd
        unknown = [v for v in pd.views if v not in VIEWS] + [b for b in pd.backgrounds if b not in BACKGROUNDS]
        if unknown:
            raise UserError(f"unknown pd view or background {unknown[0]!r}; views: {', '.join(VIEWS)}, "
                            f"backgrounds: {', '.join(BACKGROUNDS)}")
        if not pd.magnitude > 0 or pd.d == 0:
            raise UserError("pd.magnitude must be > 0 and pd.d non-zero")
        if pd.root is not None and not Path(pd.root).is_dir():
            raise UserError(f"ImageNet-PD root not found: {pd.root}")

    def conditions(self, cfg: Any) -> list[Condition]:
        return [Condition("clean")] + [Condition(f"pd:{v}/{b}") for b in cfg.pd.backgrounds for v in cfg.pd.views]

    def released(self, root: Path, condition: Condition, ctx: EvalContext) -> Dataset:
        view, background = condition.name.removeprefix("pd:").split("/")
        return imagenet_pd_subset(root, view, background, transform=photo_transform(ctx.preprocess),
                                  classes=list(ctx.clean.classes))

    def on_the_fly(self, condition: Condition, ctx: EvalContext) -> BatchTransform:
        pd = ctx.cfg.pd
        view, background = condition.name.removeprefix("pd:").split("/")
        return lambda x, g: perspective_view(x, view, background, magnitude=pd.magnitude, d=pd.d)

    def summarize(self, top1: Mapping[tuple[str, int], float], ctx: EvalContext) -> Iterator[Measurement]:
        n = len(self.dataset(Condition("clean"), ctx))
        groups = {f"pd:{b}": [v for (c, _), v in top1.items() if c.endswith(f"/{b}")] for b in BACKGROUNDS}
        groups["pd:all"] = [v for (c, _), v in top1.items() if c.startswith("pd:")]
        for name, values in groups.items():
            if values:
                yield Measurement(name, 0, "mean_top1", sum(values) / len(values), n)
        if groups["pd:all"] and ("clean", 0) in top1:
            yield Measurement("pd:all", 0, "drop", top1["clean", 0] - sum(groups["pd:all"]) / len(groups["pd:all"]),
                              n)

    def aggregates(self, measured: list[Measurement]) -> dict[str, float]:
        """Mean top-1 over all PD subsets (ranks), over black and over padded backgrounds, and the drop."""
        keys = {("pd:all", "mean_top1"): "mean_top1", ("pd:black", "mean_top1"): "black",
                ("pd:padded", "mean_top1"): "padded", ("pd:all", "drop"): "drop"}
        found = {(m.condition, m.metric): m.value for m in measured}
        return {name: found[key] for key, name in keys.items() if key in found}
