"""The ImageNet-C suite ``c`` (Hendrycks & Dietterich, ICLR 2019): top-1 per corruption × severity, from the
released tree (``c.root``) or generated on the fly on the device by the batched engine
(``transforms/corruptions``), plus the clean top-1 of the same images. On ImageNet-layout photos the on-the-fly
images start from the release's input (PIL Resize 256 bilinear + CenterCrop 224, as ``make_imagenet_c.py``), not
the model's preprocessing, and reach the model as a released tree would (center crop to its input size).

Summary rows (condition ``c:all``): ``mean_top1`` over the 15 benchmark corruptions, ``mean_error`` (the
unnormalized mean error of the 2023 SSL robustness study), and, on ImageNet-1k with the full 15 × 5 set,
``mce_alexnet`` and ``relative_mce_alexnet`` normalized by Hendrycks' published AlexNet errors (CE per corruption:
``c:<name>`` / ``ce_alexnet``) — only when the evaluation data is ImageNet-1k val or a random subset of it with all
1000 classes (``data.is_imagenet_val``, by class-list digest and split). Elsewhere AlexNet's errors mean nothing:
only the unnormalized error is reported, and the card's details say why.
``c:extra`` / ``mean_top1`` averages the 4 held-out corruptions when measured.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

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
from ssl_robustbench.benchmarks.corruption_metrics import corruption_metrics
from ssl_robustbench.config import bounded, check_fields
from ssl_robustbench.data import is_imagenet_val
from ssl_robustbench.data.shift_trees import imagenet_c_condition
from ssl_robustbench.errors import UserError
from ssl_robustbench.transforms.corruptions import (
    BENCHMARK_CORRUPTIONS,
    EXTRA_CORRUPTIONS,
    SEVERITIES,
    check,
    check_reference,
    corrupt,
    corruption_names,
    group_of,
    released_jpeg_quality,
    table_for,
)

#: corruptions that draw no random numbers (the same image gives the same pixels in any batch)
DETERMINISTIC_CORRUPTIONS = frozenset({"defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate",
                                       "jpeg_compression", "gaussian_blur", "saturate"})
MCE_NOTE = ("not reported: mCE normalizes by AlexNet's errors, published for ImageNet-1k val (all 1000 classes) "
            "only; mean_error is the unnormalized error")
#: AlexNet's clean top-1 error (torchvision's published 56.522 % top-1: the model Hendrycks' errors come from)
ALEXNET_CLEAN_ERR = 0.43478


@dataclasses.dataclass(frozen=True)
class CorruptionConfig:
    """The ImageNet-C suite (section ``c``).

    ``root``: a released ImageNet-C tree (``<corruption>/<severity>/<wnid>/``, or grouped
    ``<group>/<corruption>/<severity>/``), evaluated with a center crop only; unset: corruptions are generated
    on the fly from the clean evaluation set, on the device. ``corruptions``: names, or empty for the 15 benchmark
    ones; ``extra`` adds the 4 held-out ones. ``table``: ``auto``, ``imagenet`` or ``cifar`` constants.
    ``reference``: ``hendrycks`` (make_imagenet_c.py, which made the released set) or ``imagecorruptions``.
    ``faithful``: end as the released images were stored (JPEG 85 on the imagenet table); ``false`` leaves the
    JPEG step out, a different protocol (its rows hash differently). ``limit``: images per condition.
    """

    root: str | None = None
    corruptions: tuple[str, ...] = ()
    extra: bool = False
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    table: str = "auto"
    reference: str = "hendrycks"
    faithful: bool = True
    limit: int | None = bounded(None, low=1)

    def __post_init__(self) -> None:
        for name in self.names():
            for severity in self.severities:
                check(name, severity)
        table_for(224, 224, self.table)
        check_reference(self.reference)
        check_fields(self, "c")

    def names(self) -> list[str]:
        return corruption_names(self.corruptions, extra=self.extra)


@BENCHMARKS.register("c")
class CorruptionBenchmark(ReleasedOrOnTheFly):
    """ImageNet-C: 15 benchmark corruptions (+ 4 extra) × 5 severities."""

    name = "c"
    section = "c"
    release_input = True  # make_imagenet_c.py's input
    Config = CorruptionConfig

    def check(self, cfg: Any) -> None:
        if cfg.c.root is not None and not Path(cfg.c.root).is_dir():
            raise UserError(f"ImageNet-C root not found: {cfg.c.root}")

    def card_details(self, cfg: Any, ctx: EvalContext | None) -> dict[str, Any]:
        details = super().card_details(cfg, ctx)
        details["engine"] = "released tree" if cfg.c.root else self.engine(cfg.c, ctx)
        details["mce"] = MCE_NOTE if ctx is not None and not is_imagenet_val(ctx.eval_data) else "as published"
        return details

    @staticmethod
    def engine(c: CorruptionConfig, ctx: EvalContext | None) -> str:
        """How on-the-fly corruptions were made, in words for the card: reference, table, final encoding."""
        side = ctx.input_size if ctx is not None else 224
        table = table_for(side, side, c.table)
        quality = released_jpeg_quality(table)
        if not c.faithful:
            ending = "without the released JPEG step (not the released protocol)" if quality else "no JPEG step"
        else:
            ending = f"JPEG {quality} as released" if quality else "no JPEG step (as released)"
        return f"on the fly, {c.reference} reference, {table} table, {ending}"

    def conditions(self, cfg: Any) -> list[Condition]:
        return [CLEAN] + [Condition(f"c:{n}", s, {"corruption": n}) for n in cfg.c.names() for s in cfg.c.severities]

    def released(self, root: Path, condition: Condition, ctx: EvalContext) -> Dataset:
        name = condition.params["corruption"]
        return imagenet_c_condition(root, name, condition.severity, group_of(name), input_size=ctx.input_size,
                                    classes=list(ctx.clean.classes))

    def on_the_fly(self, condition: Condition, ctx: EvalContext) -> BatchTransform:
        c = ctx.cfg.c
        name, severity = condition.params["corruption"], condition.severity

        def apply(x, g):
            return corrupt(x, name, severity, generator=g, table=c.table, faithful=c.faithful,
                           reference=c.reference)

        return apply

    def deterministic(self, condition: Condition, settings: Any) -> bool:
        """Released images, and the corruptions that draw no random numbers."""
        return condition.key == CLEAN.key or getattr(settings, "root", None) is not None or \
            condition.params.get("corruption") in DETERMINISTIC_CORRUPTIONS

    def ranked_columns(self, evidence: list[Any]) -> list[Any]:
        return [e for e in evidence if e.params.get("corruption") in BENCHMARK_CORRUPTIONS]

    def summarize(self, top1: Mapping[Condition, float], *, n: int,
                  data: Mapping[str, Any]) -> Iterator[Measurement]:
        acc = {(c.params["corruption"], c.severity): v for c, v in top1.items() if "corruption" in c.params}
        values = [v for (name, _), v in acc.items() if name in BENCHMARK_CORRUPTIONS]
        if values:
            yield Measurement("c:all", 0, "mean_top1", sum(values) / len(values), n)
            yield Measurement("c:all", 0, "mean_error", 1 - sum(values) / len(values), n)
        full = all((name, s) in acc for name in BENCHMARK_CORRUPTIONS for s in SEVERITIES)
        if full and is_imagenet_val(data):
            acc = {(name, s): acc[name, s] for name in BENCHMARK_CORRUPTIONS for s in SEVERITIES}
            metrics = corruption_metrics(acc, clean=top1.get(CLEAN), baseline_clean=1 - ALEXNET_CLEAN_ERR)
            yield Measurement("c:all", 0, "mce_alexnet", metrics["mce"], n)
            if "relative_mce" in metrics:
                yield Measurement("c:all", 0, "relative_mce_alexnet", metrics["relative_mce"], n)
            for name in BENCHMARK_CORRUPTIONS:
                yield Measurement(f"c:{name}", 0, "ce_alexnet", metrics[f"ce:{name}"], n)
        extra = [v for c, v in top1.items() if c.params.get("corruption") in EXTRA_CORRUPTIONS]
        if extra:
            yield Measurement("c:extra", 0, "mean_top1", sum(extra) / len(extra), n)

    def aggregates(self, measured: list[Measurement]) -> dict[str, float]:
        """mean top-1 over the corruptions (ranks), then mean error, mCE and relative mCE where measured."""
        out = {}
        for metric in ("mean_top1", "mean_error", "mce_alexnet", "relative_mce_alexnet"):
            value = next((m.value for m in measured if m.condition == "c:all" and m.metric == metric), None)
            if value is not None:
                out[metric] = value
        clean = next((m.value for m in measured if m.condition == "clean" and m.metric == "top1"), None)
        if clean is not None and "mean_top1" in out:
            out["drop"] = clean - out["mean_top1"]
        return out

