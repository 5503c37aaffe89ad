"""The ImageNet-E suite ``e`` (Li et al., "ImageNet-E: Benchmarking Neural Network Robustness via Attribute
Editing", CVPR 2023): top-1 on the original images (``ori``) and on every attribute-edited subset (background,
size, position, direction), discovered from the released tree (``e.root``). On the embedded dataset without a
root, the test images are re-rendered with each attribute edited (``data/embedded.py``: ``EDITS``).

Summary rows, as in the MPD paper's table: ``e:<subset>`` / ``drop`` (top-1 on ``ori`` minus top-1 on the
subset) and ``e:all`` / ``mean_top1`` and ``drop`` averaged over the edited subsets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ssl_robustbench.benchmarks.base import (
    BENCHMARKS,
    Benchmark,
    Condition,
    EvalContext,
    Measurement,
)
from ssl_robustbench.config import bounded, check_fields
from ssl_robustbench.data import TensorImages, embedded, limited
from ssl_robustbench.data.shift_trees import EditedImages, edit_subsets, photo_transform
from ssl_robustbench.errors import UserError
from ssl_robustbench.zoo.download import cache_root


@dataclasses.dataclass(frozen=True)
class EditConfig:
    """The ImageNet-E suite (section ``e``): attribute edits (background, size, position, direction).

    ``root``: the released tree (``labels.txt``, ``ori/``, ``full/`` and one folder per edit); unset on the
    embedded dataset: the same test images re-rendered with each attribute edited. ``limit``: images per subset.
    """

    root: str | None = None
    limit: int | None = bounded(None, low=1)

    def __post_init__(self) -> None:
        check_fields(self, "e")


ORI = Condition("e:ori", 0, {"subset": "ori"})
#: the released tree's reference subsets, measured but neither edits nor averaged into ``e:all``: ``ori`` (the
#: images the edits start from) and ``full`` (the full original images; ImageNet-E, Li et al., CVPR 2023, Table 2
#: averages the edited subsets only)
REFERENCES = ("ori", "full")


@BENCHMARKS.register("e")
class EditBenchmark(Benchmark):
    """ImageNet-E: ``ori`` and each edited subset."""

    name = "e"
    clean_reference = 'e:ori: the unedited images, the same head'
    clean_aggregate, clean_condition = "ori", "e:ori"
    section = "e"
    Config = EditConfig

    def check(self, cfg: Any) -> None:
        if cfg.e.root is None and cfg.data.name != "embedded":
            raise UserError(f"suite e needs e.root (the released ImageNet-E tree) for dataset {cfg.data.name!r}; "
                            "only the embedded dataset can render its own edits")
        if cfg.e.root is not None:
            edit_subsets(Path(cfg.e.root))

    def conditions(self, cfg: Any) -> list[Condition]:
        subsets = edit_subsets(Path(cfg.e.root)) if cfg.e.root else ["ori", *embedded.EDITS]
        return [Condition(f"e:{s}", 0, {"subset": s}) for s in subsets]

    def dataset(self, condition: Condition, ctx: EvalContext) -> Dataset:
        e, subset = ctx.cfg.e, condition.params["subset"]
        limit = e.limit if e.limit is not None else ctx.cfg.data.eval_limit
        classes = list(ctx.clean.classes)
        if e.root is not None:
            return limited(EditedImages(Path(e.root), subset, transform=photo_transform(ctx.preprocess),
                                        classes=classes), limit)
        cache = Path(ctx.cfg.run.cache_dir) if ctx.cfg.run.cache_dir else cache_root()
        images, labels = embedded.load_split(ctx.cfg.data.eval_split, cache_dir=cache,
                                             edit=None if subset == "ori" else subset)
        size = images.shape[-1]
        transform = None if ctx.input_size == size else ctx.preprocess.transform(size)
        return limited(TensorImages(images, labels, classes, transform), limit)

    def ranked_columns(self, evidence: list[Any]) -> list[Any]:
        return [e for e in evidence if e.params.get("subset") not in REFERENCES] or list(evidence)

    def own_clean(self, rows: list[Any]) -> float | None:
        """``e:ori``: the unedited images, with the same head."""
        return next((r.value for r in rows if r.condition == ORI.key and r.metric == "top1"), None)

    def summarize(self, top1: Mapping[Condition, float], *, n: int,
                  data: Mapping[str, Any]) -> Iterator[Measurement]:
        if ORI not in top1:
            return
        ori = top1[ORI]
        edited = {c.key: v for c, v in top1.items() if c.params.get("subset") not in REFERENCES}
        for key, value in edited.items():
            yield Measurement(key, 0, "drop", ori - value, n)
        if edited:
            mean = sum(edited.values()) / len(edited)
            yield Measurement("e:all", 0, "mean_top1", mean, n)
            yield Measurement("e:all", 0, "drop", ori - mean, n)

    def aggregates(self, measured: list[Measurement]) -> dict[str, float]:
        """Mean top-1 over the edited subsets (ranks), its drop from ``ori``, and ``ori``."""
        found = {(m.condition, m.metric): m.value for m in measured}
        keys = {("e:all", "mean_top1"): "mean_top1", ("e:all", "drop"): "drop", ("e:ori", "top1"): "ori"}
        return {name: found[key] for key, name in keys.items() if key in found}
