"""``robustbench generate c|pd|e``: write shifted datasets in the released layouts."""

from __future__ import annotations

from pathlib import Path

import click

from ssl_robustbench.cli.common import friendly_errors
from ssl_robustbench.config import MAX_BATCH, MAX_SEED

_NATIVE = {"embedded": 64, "cifar10": 32, "cifar100": 32, "stl10": 96}


def _source_options(func):
    options = [
        click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
                     help="Directory of the tree to write."),
        click.option("--data", "data_name", default="embedded", show_default=True,
                     help="Clean source: embedded, imagenet, imagefolder, cifar10, cifar100 or stl10."),
        click.option("--data-root", default=None, help="Local dataset directory."),
        click.option("--split", default="test", show_default=True, help="Source split (ImageNet: val)."),
        click.option("--size", type=click.IntRange(min=32, max=4096), default=None,
                     help="Image side (default: native for embedded/CIFAR/STL; photos: the release's input, PIL "
                          "Resize 256 bilinear + CenterCrop 224)."),
        click.option("--limit", type=click.IntRange(min=1), default=None,
                     help="A fixed subset of this many source images."),
        click.option("--batch-size", type=click.IntRange(1, MAX_BATCH), default=64, show_default=True),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True),
        click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _write(kind: str, conditions: dict, fmt: str, *, out, data_name, data_root, split, size, limit, batch_size,
           device, seed, **manifest) -> None:
    """Writes ``conditions`` (folder → batch transform) of the clean source as a tree under ``out``, and the
    tree's manifest (source, parameters, encoding)."""
    from ssl_robustbench.data.generate import write_conditions, write_manifest
    from ssl_robustbench.runinfo import resolve_device

    ds, side = _source(data_name, data_root, split, size, limit)
    write_manifest(out, kind, source={"data": data_name, "split": split, "limit": limit, "seed": seed,
                                "batch_size": batch_size,
                                "size": side},
                   encoding=fmt, **manifest)
    written = write_conditions(ds, conditions, out, batch_size=batch_size, device=resolve_device(device), seed=seed,
                               fmt=fmt)
    click.echo(f"wrote {len(written)} conditions ({len(conditions) - len(written)} already complete) under {out}")


def _side(data_name: str, size: int | None) -> int:
    """The image side a tree is written at: ``--size``, the dataset's native side, or (photos) 224 after
    Resize 256."""
    if size is not None or data_name in _NATIVE:
        return size or _NATIVE[data_name]
    return 224


def _source(data_name, data_root, split, size, limit):
    """The clean source dataset and its image side."""
    from ssl_robustbench.data import DataRequest, build_dataset
    from ssl_robustbench.data.shift_trees import release_view
    from ssl_robustbench.preprocess import Preprocess
    from ssl_robustbench.zoo.download import cache_root

    side = _side(data_name, size)
    req = DataRequest(split=split, preprocess=Preprocess(input_size=side),
                      root=Path(data_root) if data_root else None, cache_dir=cache_root())
    ds = build_dataset(data_name, req, limit=limit)
    if size is None:  # photo folders: the released benchmark's input, resized with PIL, as the suites read it
        ds = release_view(ds) or ds
    return ds, side


@click.group("generate")
def generate_group() -> None:
    """Write ImageNet-C / -PD / -E style trees from a clean dataset (the layouts `eval --c-root` etc. read).

    \b
    Examples:
      robustbench generate c --out data/embedded-c                      # 15 corruptions × 5 severities
      robustbench generate c --out data/imagenet-c --data imagenet --data-root /data/imagenet --split val
      robustbench generate c --out data/c-fog --corruption fog --severity 3 --extra
      robustbench generate pd --out data/embedded-pd --magnitude 0.3
      robustbench generate e --out data/embedded-e --limit 500
    """


@generate_group.command("c", epilog="""\b
Examples:
  robustbench generate c --out data/embedded-c
  robustbench generate c --out data/imagenet-c --data imagenet --data-root /data/imagenet --split val
  robustbench generate c --out data/c-fog --corruption fog --severity 3 --limit 1000
""")
@_source_options
@click.option("--corruption", "corruptions", multiple=True, help="Corruption name (repeatable; default the 15).")
@click.option("--severity", "severities", type=click.IntRange(1, 5), multiple=True, help="Severity (default 1–5).")
@click.option("--extra", is_flag=True, help="Add the 4 held-out corruptions.")
@click.option("--table", default="auto", show_default=True, help="Constants: auto, imagenet or cifar.")
@click.option("--reference", default="hendrycks", show_default=True,
              help="hendrycks (make_imagenet_c.py, which made the released set) or imagecorruptions.")
@friendly_errors
def generate_c(corruptions, severities, extra, table, reference, **source) -> None:
    """ImageNet-C: <out>/<corruption>/<severity>/<class>/<name>.JPEG (JPEG 85 after corruption, as released;
    PNG on the cifar table, as CIFAR-10-C stores raw arrays). Photos: Resize 256 + CenterCrop 224 first, as
    make_imagenet_c.py does."""
    from ssl_robustbench.benchmarks.corruptions import CorruptionConfig
    from ssl_robustbench.transforms.corruptions import SEVERITIES, corrupt, released_jpeg_quality, table_for

    levels = list(severities) or list(SEVERITIES)
    # the suite's own config checks the names, severities, table and reference
    names = CorruptionConfig(corruptions=corruptions, extra=extra, severities=tuple(levels), table=table,
                             reference=reference).names()
    side = _side(source["data_name"], source["size"])
    table = table_for(side, side, table)
    quality = released_jpeg_quality(table)
    # the file's own encoding is the released one, so the engine adds no JPEG step of its own
    conditions = {f"{n}/{s}": (lambda x, g, n=n, s=s: corrupt(x, n, s, generator=g, table=table, faithful=False,
                                                              reference=reference))
                  for n in names for s in levels}
    _write("c", conditions, "JPEG" if quality else "PNG", **source, reference=reference, table=table,
           jpeg_quality=quality, corruptions=names, severities=levels)


@generate_group.command("pd", epilog="""\b
Examples:
  robustbench generate pd --out data/embedded-pd
  robustbench generate pd --out data/imagenet-pd --data imagenet --data-root /data/imagenet --split val --d 0.75
  robustbench generate pd --out data/coco-pd --annotations instances_val2017.json --data-root /data/coco/val2017
""")
@_source_options
@click.option("--magnitude", type=float, default=0.3, show_default=True,
              help="The magnitude of c in the Möbius warp (a guess: the authors publish no generation script; see "
                   "docs/suites/shifts.md).")
@click.option("--d", "d", type=float, default=1.0, show_default=True, help="d of f(z) = z / (cz + d).")
@click.option("--annotations", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A COCO instances file: write COCO-PD (the views of its images, from --data-root, at their own "
                   "size, with boxes and polygons moved along) instead of an ImageNet-PD tree.")
@friendly_errors
def generate_pd(magnitude, d, annotations, **source) -> None:
    """ImageNet-PD: <out>/PD-L, PD-R, PD-T, PD-B (black) and PD-LI … PD-BI (padded), PNG, each view warped from
    the release's 224² input (photos: PIL Resize 256 bilinear + CenterCrop 224), quantized as mobius-mpd
    (truncation): the images the on-the-fly suite evaluates."""
    from ssl_robustbench.benchmarks.perspective import VIEWS, PerspectiveConfig, perspective_view
    from ssl_robustbench.data.generate import pd_folders

    PerspectiveConfig(magnitude=magnitude, d=d)  # checks the values
    if annotations is not None:
        _coco_pd(annotations, magnitude, d, source)
        return
    folders = pd_folders(tuple(VIEWS), ("black", "padded"))
    conditions = {folder: (lambda x, g, v=v, b=b: perspective_view(x, v, b, magnitude=magnitude, d=d))
                  for (v, b), folder in folders.items()}
    _write("pd", conditions, "PNG", **source, magnitude=magnitude, d=d,
           backgrounds={"black": "zeros outside the warped image", "padded": "border pixels (coordinates clamped)"},
           views={f: f"{v}/{b}" for (v, b), f in folders.items()},
           protocol="views of the 224² crop, as the on-the-fly suite (ssl-robustbench's choice: the authors "
                    "publish no ImageNet-PD generation script)")


def _coco_pd(annotations: Path, magnitude: float, d: float, source: dict) -> None:
    from ssl_robustbench.data.coco_pd import write_coco_pd
    from ssl_robustbench.data.generate import write_manifest
    from ssl_robustbench.data.shift_trees import PD_FOLDERS
    from ssl_robustbench.errors import UserError
    from ssl_robustbench.fileio import sha256_file

    context = click.get_current_context()
    ignored = [f"--{name.replace('_', '-')}" for name in ("data_name", "split", "size", "batch_size", "seed")
               if context.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT]
    if ignored:
        named = ", ".join(ignored).replace("--data-name", "--data")
        raise UserError(f"{named} {'does' if len(ignored) == 1 else 'do'} not apply to COCO-PD, which warps the "
                        "annotation file's images at their own size, one at a time, with the fixed PD views "
                        "(--limit, --device and --data-root do apply)")
    if source["data_root"] is None or not Path(source["data_root"]).is_dir():
        raise UserError("--annotations needs --data-root: the folder its images' file_name entries are relative to")
    if not annotations.is_file():
        raise UserError(f"COCO annotation file not found: {annotations}")
    from ssl_robustbench.runinfo import resolve_device

    write_manifest(source["out"], "coco-pd", source={"annotations": annotations.name, "limit": source["limit"],
                                                      "annotations_sha256": sha256_file(annotations)},
                   magnitude=magnitude, d=d, encoding="PNG",
                   views={f: f"{v}/{b}" for (v, b), f in PD_FOLDERS.items()})
    written = write_coco_pd(annotations, Path(source["data_root"]), source["out"], magnitude=magnitude, d=d,
                            limit=source["limit"], device=resolve_device(source["device"]))
    click.echo(f"wrote {len(written)} views with annotations/instances_<view>.json under {source['out']}")


@generate_group.command("e", epilog="""\b
Examples:
  robustbench generate e --out data/embedded-e --limit 500
  robustbench eval --suite e --e-root data/embedded-e
""")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--split", default="test", show_default=True, type=click.Choice(["train", "val", "test"]))
@click.option("--limit", type=click.IntRange(min=1), default=None, help="A fixed subset of this many images.")
@friendly_errors
def generate_e(out, split, limit) -> None:
    """ImageNet-E layout of the embedded dataset's attribute edits: labels.txt, ori/*.png, <edit>/*.png (lossless)."""
    from ssl_robustbench.data.generate import write_edit_tree
    from ssl_robustbench.zoo.download import cache_root

    subsets = write_edit_tree(out, split=split, cache_dir=cache_root(), limit=limit)
    click.echo(f"wrote {', '.join(subsets)} under {out}")
