"""The frame of the suites read only from a released dataset of ImageNet classes (ImageNet-V2, -Sketch, -R, -A,
-3DCC): each suite is one plug-in file that names its tree layout, its conditions and, for the 200-class sets, the
classes whose logits compete.

Every such suite needs an ImageNet-1k head (``--data imagenet``): its labels are ImageNet class indices. Clean is
the clean evaluation set (for the 200-class sets: its images of those 200 classes, scored on the same 200 logits,
as the official ImageNet-R evaluation reports "ImageNet-200"). Every image — released or clean, 224² ones
included — goes through the official evaluation scripts' input: PIL ``Resize(256)`` (bilinear) and
``CenterCrop(224)`` (imagenet-r and natural-adv-examples ``eval.py``, ImageNet-V2's and ImageNet-Sketch's
evaluation; ImageNet-3DCC reads as RobustBench does, ``imagenet_3dcc``), then a center crop to the model's input
size, per image; the model's own normalization follows inside the model. Summary: ``<suite>:all`` ``mean_top1`` over the
shifted conditions and its ``drop`` from clean.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from torch.utils.data import Dataset

from ssl_robustbench.benchmarks.base import CLEAN, Benchmark, Condition, EvalContext, Measurement
from ssl_robustbench.config import bounded, check_fields
from ssl_robustbench.data import dataset_labels, limited, subset
from ssl_robustbench.data.folders import CheckedImageFolder, imagenet_wnids
from ssl_robustbench.data.shift_trees import RELEASE_INPUT, release_transform, release_view
from ssl_robustbench.errors import UserError

CLASS_LISTS = Path(__file__).resolve().parent.parent / "data" / "class_lists"


def class_list(name: str) -> list[int]:
    """A released set's classes as ImageNet-1k indices (``data/class_lists/<name>.txt``, which names its source)."""
    text = (CLASS_LISTS / f"{name}.txt").read_text(encoding="utf-8")
    return [int(t) for line in text.splitlines() if not line.startswith("#") for t in line.split()]


@dataclasses.dataclass(frozen=True)
class ReleasedSetConfig:
    """A released dataset's tree (``root``, required to run the suite) and images per condition (``limit``).
    ``SECTION``: the config section a subclass is read from (what its errors name, e.g. ``r.limit``)."""

    SECTION: ClassVar[str] = "released set"
    root: str | None = None
    limit: int | None = bounded(None, low=1)

    def __post_init__(self) -> None:
        check_fields(self, self.SECTION)


__all__ = ["ReleasedSet", "ReleasedSetConfig", "class_list"]


class ReleasedSet(Benchmark):
    """A suite whose shifted images come only from a released tree; see the module docstring. A subclass names
    its ``title`` and the key of its one shifted condition (``shifted_key``), read as an ImageFolder of ImageNet
    classes at its root, or overrides ``conditions`` and ``shifted``; its ``--<name>-root`` option and
    ``--n-shift`` are declared in ``suite_options.SUITE_OPTIONS``."""

    title = ""  #: the dataset's name in messages
    shifted_key = ""  #: the condition of a single-condition set, e.g. ``r:renditions``
    class_subset: str | None = None  #: name of the class list whose logits compete (None: all 1000)

    def conditions(self, cfg: Any) -> list[Condition]:
        return [CLEAN, Condition(self.shifted_key)]

    def check(self, cfg: Any) -> None:
        root = self.settings(cfg).root
        if root is None:
            raise UserError(f"suite {self.name} reads the released {self.title} tree: set --{self.name}-root DIR "
                            f"(or {self.name}.root in the config)")
        if not Path(root).is_dir():
            raise UserError(f"{self.title} root not found: {root}")
        if cfg.data.name != "imagenet":
            raise UserError(f"suite {self.name} needs an ImageNet-1k head (--data imagenet): {self.title}'s labels "
                            f"are ImageNet classes, not {cfg.data.name}'s")

    def recorded_settings(self, cfg: Any) -> dict[str, Any]:
        """The section (root reduced to "released") and the tree's file list: its image count and the digest of
        their relative paths, so a partial or altered tree never shares a protocol with the release."""
        settings = super().recorded_settings(cfg)
        root = self.settings(cfg).root
        if root is not None and Path(root).is_dir():
            settings["tree"] = tree_listing(Path(root))
        return settings

    def shifted(self, root: Path, condition: Condition, ctx: EvalContext) -> Dataset:
        """The released images of a shifted ``condition`` (default: the root as an ImageFolder of wnids)."""
        return self.folder(root, ctx)

    def classes(self, condition: Condition, ctx: EvalContext) -> list[int] | None:
        return class_list(self.class_subset) if self.class_subset else None

    def card_details(self, cfg: Any, ctx: EvalContext | None) -> dict[str, Any]:
        return super().card_details(cfg, ctx) | {"input": RELEASE_INPUT}

    def dataset(self, condition: Condition, ctx: EvalContext) -> Dataset:
        section = self.settings(ctx.cfg)
        if condition.key != CLEAN.key:
            return limited(self.shifted(Path(section.root), condition, ctx), section.limit)
        return limited(self.clean_images(ctx), section.limit)

    def clean_images(self, ctx: EvalContext) -> Dataset:
        """The clean condition's images before ``limit``: the evaluation set with the official input (for the
        200-class sets, its images of those classes)."""
        clean = release_view(ctx.clean, ctx.input_size)
        if clean is None:
            raise UserError(f"suite {self.name} scores photos of ImageNet classes (--data imagenet)")
        if self.class_subset:  # the clean images of the suite's classes
            keep = set(class_list(self.class_subset))
            labels = dataset_labels(clean)
            clean = subset(clean, [i for i, t in enumerate(labels) if t in keep])
            if len(clean) == 0:
                raise UserError(f"the evaluation set holds no image of {self.title}'s 200 classes")
        return clean

    def folder(self, path: Path, ctx: EvalContext, *, class_index: list[str] | None = None) -> Dataset:
        """An ImageFolder of ImageNet classes (wnid folders, or ``class_index``), checked against the suite's class
        list: a class folder outside it is an error naming it."""
        if not path.is_dir():
            raise UserError(f"{self.title} folder not found: {path}")
        ds = CheckedImageFolder(path, transform=release_transform(ctx.input_size),
                                class_index=class_index or imagenet_wnids())
        if self.class_subset:
            allowed = set(class_list(self.class_subset))
            outside = sorted({ds.classes[t] for _, t in ds.samples if t not in allowed})
            if outside:
                raise UserError(f"{path} holds class {outside[0]}, which is not one of {self.title}'s 200 classes")
        return ds

    def summarize(self, top1: Mapping[Condition, float], *, n: int,
                  data: Mapping[str, Any]) -> Iterator[Measurement]:
        shifted = [v for c, v in top1.items() if c.key != CLEAN.key]
        if not shifted:
            return
        mean = sum(shifted) / len(shifted)
        yield Measurement(f"{self.name}:all", 0, "mean_top1", mean, n)
        if CLEAN in top1:
            yield Measurement(f"{self.name}:all", 0, "drop", top1[CLEAN] - mean, n)

    def aggregates(self, measured: list[Measurement]) -> dict[str, float]:
        """Mean top-1 over the shifted conditions (ranks) and its drop from clean."""
        found = {(m.condition, m.metric): m.value for m in measured}
        return {metric: found[f"{self.name}:all", metric] for metric in ("mean_top1", "drop")
                if (f"{self.name}:all", metric) in found}


def tree_listing(root: Path) -> dict[str, Any]:
    """``{"images": count, "paths_sha256": digest}`` of the image files under ``root`` (relative paths, sorted;
    hidden entries skipped, as the folder readers skip them)."""
    import hashlib
    import os

    from torchvision.datasets.folder import IMG_EXTENSIONS

    paths, seen = [], set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a link back into the tree: the folder readers refuse it too
            raise UserError(f"{folder} is reached twice under {root} (a link loop or a link into another folder)")
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = Path(folder).relative_to(root)
        paths += [(rel / f).as_posix() for f in files if not f.startswith(".") and f.lower().endswith(IMG_EXTENSIONS)]
    digest = hashlib.sha256("\n".join(sorted(paths)).encode()).hexdigest()
    return {"images": len(paths), "paths_sha256": digest}
