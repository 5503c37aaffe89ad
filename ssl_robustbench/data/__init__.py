"""Datasets by name: ``build_dataset(name, split=..., ...)`` returns a torch Dataset of ([3,H,W] image, label); the
image is uint8 (datasets read from files) or float in [0, 1], and every loader (``ImageLoader``) gives float.

Registered: ``embedded`` (no download), ``imagenet`` (ImageFolder with the 1000-wnid index), ``imagefolder`` (any
class-per-folder tree), ``cifar10``, ``cifar100``, ``stl10`` (torchvision, from a local ``root``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ssl_robustbench.data import embedded
from ssl_robustbench.data.folders import CheckedImageFolder, imagenet_wnids
from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import stable_hash
from ssl_robustbench.preprocess import Preprocess
from ssl_robustbench.registry import Registry


@dataclasses.dataclass(frozen=True)
class DataRequest:
    """Everything a dataset builder may need."""

    split: str
    preprocess: Preprocess
    root: Path | None = None
    download: bool = False
    cache_dir: Path = Path(".")
    seed: int = 0
    classes: tuple[str, ...] | None = None  # the head's classes by name (folder trees are matched to them)


DATASETS: Registry[Callable[[DataRequest], Dataset]] = Registry("dataset")


class TensorImages(Dataset):
    """Images held in memory as uint8 [N,3,H,W]; items are float [0,1], after an optional transform applied to the
    uint8 pixels."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, classes: list[str], transform: Callable | None):
        self.images, self.labels, self.classes, self.transform = images, labels, classes, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if self.transform is None:
            return self.images[i].float().div_(255), int(self.labels[i])
        # resized on uint8 pixels, as photos are (Preprocess.transform), then made float
        return float_images(self.transform(self.images[i])), int(self.labels[i])

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, int]]:
        """A batch's items at once (the DataLoader asks for them so): without a transform, one conversion to
        float for the whole batch instead of one per image."""
        if self.transform is not None:
            return [self[i] for i in indices]
        images = self.images[indices].float().div_(255)
        return list(zip(images.unbind(0), self.labels[indices].tolist(), strict=True))


@DATASETS.register("embedded")
def _embedded(req: DataRequest) -> Dataset:
    if req.split not in embedded.SPLITS:
        raise UserError(f"embedded dataset has splits {', '.join(embedded.SPLITS)}, not {req.split!r}")
    images, labels = embedded.load_split(req.split, cache_dir=req.cache_dir, seed=req.seed)
    size = images.shape[-1]
    transform = None if req.preprocess.input_size == size else req.preprocess.transform(size)
    ds = TensorImages(images, labels, list(embedded.CLASSES), transform)
    ds.identity = {"generator_version": embedded.GENERATOR_VERSION, "split": req.split, "seed": req.seed}
    return ds


def _root(req: DataRequest, name: str) -> Path:
    if req.root is None:
        raise UserError(f"dataset {name!r} needs --data-root")
    if not Path(req.root).is_dir():
        raise UserError(f"data root not found: {req.root}")
    return Path(req.root)


@DATASETS.register("imagenet")
def _imagenet(req: DataRequest) -> Dataset:
    ds = CheckedImageFolder(_split_dir(req, "imagenet"), transform=req.preprocess.transform(None),
                            class_index=imagenet_wnids())
    ds.identity = getattr(ds, "identity", {}) | {"imagenet_split": req.split}
    return ds


def is_imagenet_val(identity: Any) -> bool:
    """Whether a data identity is ImageNet-1k val, whole or a fixed random subset of it, with all 1000 classes —
    where AlexNet's published ImageNet-C errors (mCE's normalizer) mean something."""
    while isinstance(identity, dict) and "subset_of" in identity:
        identity = identity["subset_of"]
    return (isinstance(identity, dict) and identity.get("imagenet_split") == "val"
            and identity.get("classes") == stable_hash(imagenet_wnids()) and "classes_present" not in identity)


@DATASETS.register("imagefolder")
def _imagefolder(req: DataRequest) -> Dataset:
    return CheckedImageFolder(_split_dir(req, "imagefolder"), transform=req.preprocess.transform(None),
                              class_index=list(req.classes) if req.classes else None,
                              index_source="the training split's class folders")


def head_classes(name: str, req: DataRequest) -> list[str] | None:
    """The classes a head fitted on ``req.split`` of dataset ``name`` scores, by name, without reading images —
    for datasets whose class list comes from the data (``imagefolder``: the split's class folders); None where
    the dataset fixes it (ImageNet's 1000 wnids, CIFAR, STL-10, the embedded set)."""
    if name != "imagefolder":
        return None
    from ssl_robustbench.data.folders import class_folders

    classes = class_folders(_split_dir(req, name))
    if len(classes) < 2:
        raise UserError(f"{_split_dir(req, name)} has {len(classes)} class folder(s): top-1 accuracy needs at least "
                        "2 classes (one class scores 100 % whatever the model)")
    return classes


def _split_dir(req: DataRequest, name: str) -> Path:
    """``<root>/<split>``, or an error that names the splits that are there and the key that picks one."""
    root = _root(req, name)
    path = root / req.split
    if not path.is_dir():
        splits = sorted(e.name for e in root.iterdir() if e.is_dir() and not e.name.startswith("."))
        raise UserError(f"image folder not found: {path} (splits under {root}: {', '.join(splits) or 'none'}; pick "
                        f"one with --set data.train_split=… / data.eval_split=…)")
    return path


def _torchvision(cls_name: str, native: int, split_arg: Callable[[str], dict]) -> Callable[[DataRequest], Dataset]:
    def build(req: DataRequest) -> Dataset:
        import torchvision.datasets as tvd

        kwargs = split_arg(req.split)
        try:
            root = str(_root(req, cls_name.lower()))
            transform = req.preprocess.transform(native)
            return getattr(tvd, cls_name)(root, transform=transform, download=req.download, **kwargs)
        except RuntimeError as err:
            raise UserError(f"{cls_name} not found under {req.root} ({err}); add --set data.download=true to fetch "
                            "it (needs internet)") from None

    return build


def _train_test(split: str) -> dict:
    if split not in ("train", "test"):
        raise UserError(f"this dataset has splits train, test, not {split!r}")
    return {"train": split == "train"}


def _stl_split(split: str) -> dict:
    if split not in ("train", "test", "unlabeled", "train+unlabeled"):
        raise UserError(f"STL-10 has splits train, test, unlabeled, train+unlabeled, not {split!r}")
    return {"split": split}


DATASETS.register("cifar10")(_torchvision("CIFAR10", 32, _train_test))
DATASETS.register("cifar100")(_torchvision("CIFAR100", 32, _train_test))
DATASETS.register("stl10")(_torchvision("STL10", 96, _stl_split))


def dataset_identity(ds: Dataset) -> dict[str, Any]:
    """What a dataset *is*, independent of where it is stored: its kind, size, class list and — for file trees —
    the sha256 of its sorted relative file list with labels (two copies of ImageNet val hash alike at any root; a
    missing or extra file changes it). A fixed subset adds the digest of its indices. Where the labels are known
    without decoding images, ``labels`` is the sha256 of the label vector in dataset order
    (``results.card.labels_digest``): a card's evidence of the whole set must carry exactly these labels."""
    from ssl_robustbench.results.card import labels_digest

    labels = _cheap_labels(ds)
    if isinstance(ds, Subset):
        out = {"subset_of": dataset_identity(ds.dataset), "n": len(ds.indices),
               "indices": stable_hash([int(i) for i in ds.indices])}
        if getattr(ds, "label_fraction", None) is not None:
            out["label_fraction"] = ds.label_fraction
        if labels is not None:
            out["labels"] = labels_digest(labels)
        return out
    classes = list(getattr(ds, "classes", None) or [])
    out: dict[str, Any] = {"kind": type(ds).__name__, "n": len(ds), "classes": stable_hash(classes),
                           "num_classes": len(classes)}
    if hasattr(ds, "samples") and hasattr(ds, "root"):
        root = Path(ds.root)
        out["files"] = stable_hash(sorted((Path(p).relative_to(root).as_posix(), int(y)) for p, y in ds.samples),
                                   length=64)
    out.update(getattr(ds, "identity", {}))
    if labels is not None:
        out["labels"] = labels_digest(labels)
    return out


def _cheap_labels(ds: Dataset) -> list[int] | None:
    """The label vector where the dataset keeps it (``targets`` / ``labels``, through subsets), else None."""
    if isinstance(ds, Subset):
        inner = _cheap_labels(ds.dataset)
        return None if inner is None else [inner[int(i)] for i in ds.indices]
    for attr in ("targets", "labels"):
        values = getattr(ds, attr, None)
        if values is not None and len(values) == len(ds):
            return [int(v) for v in values]
    return None


def fixed_subset(length: int, n: int) -> list[int]:
    """The first ``n`` indices of a fixed (seed 0) permutation of ``range(length)``: the same images every run."""
    return torch.randperm(length, generator=torch.Generator().manual_seed(0))[:n].tolist()


def float_images(x: torch.Tensor) -> torch.Tensor:
    """Images as float in [0, 1]: uint8 pixels (what the file-backed datasets give) divided by 255, float ones as
    they are."""
    return x.float().div_(255) if x.dtype == torch.uint8 else x


class ImageLoader(DataLoader):
    """A ``DataLoader`` whose batches hold float images in [0, 1] (the first element of each batch, or the batch),
    whatever the dataset's items are: datasets read from files give uint8 tensors, so the workers send a quarter
    of the bytes (and pin a quarter of the memory), and the main process converts each batch once. Every loader of
    the project is one of these."""

    def __iter__(self):
        for batch in super().__iter__():
            if isinstance(batch, (list, tuple)):
                yield (float_images(batch[0]), *batch[1:])
            else:
                yield float_images(batch)


def eval_loader(ds: Dataset, run: Any) -> DataLoader:
    """An in-order loader with the run's batch size and workers (pinned memory when CUDA is available)."""
    return ImageLoader(ds, batch_size=run.batch_size, num_workers=run.workers, pin_memory=torch.cuda.is_available())


def subset(ds: Dataset, indices: list[int]) -> Dataset:
    """``Subset`` that keeps the dataset's ``classes``."""
    sub = Subset(ds, indices)
    sub.classes = getattr(ds, "classes", None)  # type: ignore[attr-defined]
    return sub


def limited(ds: Dataset, limit: int | None) -> Dataset:
    """The fixed seeded random subset of ``limit`` images (the same for every run and condition), or ``ds``."""
    if limit is None or limit >= len(ds):
        return ds
    return subset(ds, sorted(fixed_subset(len(ds), limit)))


def dataset_labels(ds: Dataset) -> list[int]:
    """Every sample's label without decoding images where the dataset keeps them (``targets``: torchvision CIFAR and
    ImageFolder trees; ``labels``: STL-10 and the embedded set); otherwise read sample by sample."""
    labels = _cheap_labels(ds)
    return labels if labels is not None else [int(ds[i][1]) for i in range(len(ds))]


def label_fraction_subset(ds: Dataset, fraction: float) -> Dataset:
    """The labelled subset of the semi-supervised protocols (1 % / 10 % of the labels): for each class, the first
    max(1, round(fraction · n_class)) of its images in a fixed (seed 0) permutation — class-balanced, the same every
    run. ``fraction`` 1 returns ``ds``. The subset records the fraction in its identity (hence in the cards)."""
    if fraction >= 1.0:
        return ds
    labels = torch.tensor(dataset_labels(ds))
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    keep = []
    for c in labels.unique().tolist():
        members = order[labels[order] == c]
        keep += members[:max(1, round(fraction * len(members)))].tolist()
    sub = subset(ds, sorted(keep))
    sub.label_fraction = fraction  # type: ignore[attr-defined]
    return sub


def build_dataset(name: str, req: DataRequest, *, limit: int | None = None) -> Dataset:
    """Builds dataset ``name``; ``limit`` keeps a fixed seeded random subset of that size (recorded as ``n``)."""
    return limited(DATASETS.get(name)(req), limit)
