"""``robustbench generate``: writes distribution-shift datasets from a clean one, in the released layouts.

``c``: ``<out>/<corruption>/<severity>/<class>/<name>.JPEG``, saved as JPEG quality 85 after corruption as the
released ImageNet-C images were (Hendrycks & Dietterich 2019) — on the ``cifar`` table PNG, as CIFAR-10-C stores
raw uint8 arrays. ``pd``: ``<out>/PD-L`` … ``PD-BI`` (lossless PNG). Photos start from the release's input (PIL
Resize 256 bilinear + CenterCrop 224) for both. ``e``: the embedded
dataset's attribute edits as an ImageNet-E tree (``labels.txt``, every subset lossless PNG, as the on-the-fly
suite sees them).

Each condition is drawn with its own generator seeded by ``seed``, batch by batch, exactly as ``robustbench eval``
draws it on the fly with the same seed and batch size, so a written ``c`` or ``pd`` tree evaluates to the same
numbers (on photos: both start from the release's 224² input and the model reads its center crop). Every tree
gets ``manifest.json`` (what made it: source, sizes, parameters, encoding). Files are written atomically; a
finished condition leaves ``.complete`` and is skipped when the command is run again.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset, Subset

from ssl_robustbench import __version__
from ssl_robustbench.data import ImageLoader, embedded, fixed_subset
from ssl_robustbench.data.shift_trees import PD_FOLDERS
from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    read_json,
    require_free_space,
)
from ssl_robustbench.progress import progress_bar
from ssl_robustbench.transforms.corruptions import RELEASED_JPEG_QUALITY

BatchTransform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def sample_names(ds: Dataset) -> list[str]:
    """A file stem per sample: the source file's stem for image folders, else the zero-padded index."""
    if isinstance(ds, Subset):
        inner = sample_names(ds.dataset)
        return [inner[i] for i in ds.indices]
    samples = getattr(ds, "samples", None)
    if samples is not None:
        return [Path(p).stem for p, *_ in samples]
    return [f"{i:08d}" for i in range(len(ds))]


def encode(image: torch.Tensor, fmt: str) -> bytes:
    """[3, H, W] in [0, 1] on the uint8 grid → JPEG (quality 85) or PNG bytes."""
    array = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    buffer = io.BytesIO()
    if fmt == "JPEG":
        Image.fromarray(array).save(buffer, "JPEG", quality=RELEASED_JPEG_QUALITY)
    else:
        Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


#: bytes per stored pixel value, an upper estimate for free-space checks (JPEG 85 of photos: ~0.5; PNG: ~1)
BYTES_PER_PIXEL_VALUE = {"JPEG": 0.5, "PNG": 1.0}


def write_conditions(ds: Dataset, conditions: dict[str, BatchTransform], out: Path, *, batch_size: int,
                     device: torch.device, seed: int, fmt: str) -> list[Path]:
    """Writes each condition (relative folder → transform) as ``<out>/<folder>/<class>/<name>.<ext>``."""
    names, classes = sample_names(ds), list(ds.classes)  # type: ignore[attr-defined]
    ext = ".JPEG" if fmt == "JPEG" else ".png"
    written = []
    todo = {k: v for k, v in conditions.items() if not (out / k / ".complete").is_file()}
    if todo and len(ds):
        side = int(ds[0][0].shape[-1])
        per_image = side * side * 3 * (BYTES_PER_PIXEL_VALUE[fmt]) + 4096  # + a file system block
        require_free_space(out, len(todo) * len(ds) * per_image,
                           what=f"{len(todo)} conditions × {len(ds)} images ({fmt}, about {side}²)")
    loader = ImageLoader(ds, batch_size=batch_size)
    with progress_bar(total=len(todo) * len(loader), description="generate") as advance:
        for folder, transform in todo.items():
            g = torch.Generator(device=device).manual_seed(seed)
            index = 0
            for x, y in loader:
                shifted = transform(x.to(device), g)
                for image, label in zip(shifted, y.tolist(), strict=True):
                    atomic_write_bytes(out / folder / classes[label] / f"{names[index]}{ext}", encode(image, fmt))
                    index += 1
                advance(1, description=f"generate {folder}")
            atomic_write_text(out / folder / ".complete", f"{index} images\n")
            written.append(out / folder)
    return written


MANIFEST = "manifest.json"


def write_manifest(out: Path, kind: str, **entries) -> None:
    """``<out>/manifest.json``: what made the tree (kind, tool version, and the caller's entries). A tree made
    with other settings is refused: resuming into it would mix two protocols under one manifest."""
    import json

    manifest = json.loads(json.dumps({"kind": kind, "generator": f"ssl-robustbench {__version__}", **entries}))
    existing = read_manifest(Path(out))
    if existing is not None and existing != manifest:
        changed = sorted(k for k in manifest.keys() | existing.keys() if manifest.get(k) != existing.get(k))
        raise UserError(f"{Path(out)} was generated with other settings ({', '.join(changed)} differ); "
                        "write the new tree to another --out")
    atomic_write_json(Path(out) / MANIFEST, manifest)


def read_manifest(root: Path) -> dict | None:
    """A generated tree's manifest, or None where the tree has none (a released one); a manifest that is not a
    JSON object is refused."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        return None
    manifest = read_json(path, what="generated tree's manifest")
    if not isinstance(manifest, dict):
        raise UserError(f"{path} must hold a JSON object, not {type(manifest).__name__}")
    return manifest


def write_edit_tree(out: Path, *, split: str, cache_dir: Path, limit: int | None, seed: int = 0) -> list[str]:
    """The embedded dataset's attribute edits as an ImageNet-E tree; returns the subsets written."""
    subsets = ["ori", *embedded.EDITS]
    images, labels = embedded.load_split(split, cache_dir=cache_dir, seed=seed)
    keep = sorted(fixed_subset(len(labels), limit)) if limit else list(range(len(labels)))
    write_manifest(out, "e", source={"data": "embedded", "split": split, "limit": limit, "seed": seed},
                   subsets=subsets, encoding="PNG (lossless) for every subset")
    lines = [f"{i:08d}.png\t{int(labels[i])}" for i in keep]
    with progress_bar(total=len(subsets), description="generate e") as advance:
        for subset in subsets:
            edited = images if subset == "ori" else embedded.load_split(split, cache_dir=cache_dir, seed=seed,
                                                                         edit=subset)[0]
            # one lossless encoding for every subset, so each drop compares the images the on-the-fly suite sees
            for i in keep:
                atomic_write_bytes(out / subset / f"{i:08d}.png", encode(edited[i].float() / 255, "PNG"))
            advance(1)
    atomic_write_text(out / "labels.txt", "\n".join(lines) + "\n")
    return subsets


def pd_folders(views: tuple[str, ...], backgrounds: tuple[str, ...]) -> dict[tuple[str, str], str]:
    """The released subset folder of each (view, background)."""
    return {(v, b): PD_FOLDERS[v, b] for b in backgrounds for v in views}
