"""``robustbench augment preview``."""

from __future__ import annotations

from pathlib import Path

import click

from ssl_robustbench.cli.common import friendly_errors


@click.group("augment")
def augment_group() -> None:
    """Inspect view generation.

    \b
    Examples:
      robustbench augment preview --aug mpd --aug lcm --out preview.png
    """


@augment_group.command("preview", epilog="""\b
Examples:
  robustbench augment preview --aug mpd --aug lcm --out preview.png
  robustbench augment preview --aug mpd --method dino --n 6 --scale 4 --out dino-mpd.png
  robustbench augment preview --aug mpd --aug lcm --annotate --n 6 --size 96 --out boxes.png
""")
@click.option("--aug", "augs", multiple=True, help="Registered augmentation to show (repeatable): mpd, lcm, …")
@click.option("--method", default="simclr", show_default=True, help="Whose preset places and views to use.")
@click.option("--data", "data_name", default="embedded", show_default=True)
@click.option("--data-root", default=None)
@click.option("--n", type=int, default=8, show_default=True, help="Images per row.")
@click.option("--size", type=int, default=64, show_default=True, help="Image side.")
@click.option("--scale", type=int, default=3, show_default=True, help="Upscaling of the grid for viewing.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--annotate", is_flag=True,
              help="Also show boxes and key points moving with the views (MPD and LCM as detection transforms).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@friendly_errors
def preview_command(augs, method, data_name, data_root, n, size, scale, seed, annotate, out) -> None:
    """Write a PNG grid: the images, each augmentation alone, and the method's views with them inserted."""
    import torch

    from ssl_robustbench.data import DataRequest, build_dataset, float_images
    from ssl_robustbench.preprocess import Preprocess
    from ssl_robustbench.transforms.preview import annotated_rows, preview_rows, save_grid
    from ssl_robustbench.zoo.download import cache_root

    req = DataRequest(split="val" if data_name == "embedded" else "test", preprocess=Preprocess(size, crop_pct=1.0),
                      root=Path(data_root) if data_root else None, cache_dir=cache_root())
    ds = build_dataset(data_name, req, limit=n)
    x = float_images(torch.stack([ds[i][0] for i in range(len(ds))]))
    rows = preview_rows(x, list(augs), method=method, view_size=size, seed=seed)
    if annotate:
        rows += annotated_rows(x, list(augs), seed=seed)
    if scale > 1:
        rows = [(label, torch.nn.functional.interpolate(v, scale_factor=scale, mode="bilinear")) for label, v in rows]
    save_grid(rows, out)
    click.echo(f"wrote {out}")
