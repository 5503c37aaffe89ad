"""Speed of the batched ImageNet-C engine against the reference ``imagecorruptions`` package, same images, same run.

For each of the 15 benchmark corruptions: our time for a batch (default 64 images of 224², one call) and the
reference's per-image time (measured on the first ``--ref-images`` of the same images, one at a time, as
``imagecorruptions.corrupt`` works) scaled to the batch. Both go from the same float [B, 3, H, W] batch to a float
batch, as an eval loop needs: the reference's time includes each image's conversion to a uint8 HWC array and
back. Prints the ratio at severity 3 per corruption and over the whole 15 × 5 set (sum of times).
Targets: ≥ 20× over the set, ≥ 1× on every corruption.

    python perf/corruption_throughput.py [--batch 64] [--size 224] [--ref-images 8] [--device cpu]
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from ssl_robustbench.runinfo import resolve_device  # noqa: E402
from ssl_robustbench.transforms.corruptions import BENCHMARK_CORRUPTIONS, corrupt  # noqa: E402

from corruption_reference import load_reference, reference_batch  # noqa: E402
from timing import best_of  # noqa: E402


def images(n: int, size: int) -> torch.Tensor:
    """Photo-like test images: smooth colour fields with sharp edges and texture, uint8 [n, 3, size, size]."""
    g = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(n, 3, 8, 8, generator=g), size=(size, size), mode="bicubic")
    texture = torch.rand(n, 1, size, size, generator=g) * 0.15
    edges = (torch.rand(n, 1, 16, 16, generator=g) > 0.5).float().repeat_interleave(size // 16, -1)
    edges = edges.repeat_interleave(size // 16, -2)[..., :size, :size] * 0.2
    return ((smooth + texture + edges).clamp(0, 1) * 255).round().to(torch.uint8)


def reference_floats(ref, name: str, severity: int, x: torch.Tensor) -> torch.Tensor:
    """The reference applied image by image to a float batch, returning a float batch."""
    out = []
    for image in x:
        array = (image * 255).round().byte().permute(1, 2, 0).numpy()
        out.append(torch.from_numpy(reference_batch(ref, name, severity, array[None])[0]).permute(2, 0, 1))
    return torch.stack(out).float() / 255


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--ref-images", type=int, default=8)
    parser.add_argument("--severities", default="1,2,3,4,5")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = resolve_device(args.device)
    ref = load_reference()
    imgs = images(args.batch, args.size)
    x = (imgs.float() / 255).to(device)
    x_ref = x[: args.ref_images].cpu()
    severities = [int(s) for s in args.severities.split(",")]
    for name in ("fog", "jpeg_compression"):  # warm-up (lazy imports, texture loading, the JPEG bindings check)
        corrupt(x[:2], name, 1)
    print(f"{args.batch} images {args.size}², device {device}, {torch.get_num_threads()} threads; reference "
          f"timed on {len(x_ref)} images and scaled to {args.batch}")
    print(f"{'corruption':18s} {'ours s3 (s)':>12s} {'ref s3 (s)':>11s} {'ratio s3':>9s} {'ours img/s':>11s}")
    total_ours = total_ref = 0.0
    worst: dict[str, tuple[float, float]] = {}  # per corruption: (ours, reference) at its least favourable severity
    for name in BENCHMARK_CORRUPTIONS:
        row = {}
        for severity in severities:
            g = torch.Generator(device=device).manual_seed(severity)
            ours = best_of(functools.partial(corrupt, x, name, severity, generator=g), device, repeats=1)
            theirs = best_of(functools.partial(reference_floats, ref, name, severity, x_ref), device, repeats=1)
            theirs *= args.batch / len(x_ref)
            total_ours += ours
            total_ref += theirs
            row[severity] = (ours, theirs)
        ours, theirs = row.get(3, next(iter(row.values())))
        worst[name] = min(row.values(), key=lambda pair: pair[1] / pair[0])  # its least favourable severity
        print(f"{name:18s} {ours:12.3f} {theirs:11.2f} {theirs / ours:8.1f}× {args.batch / ours:11.0f}")
    rate = args.batch * len(BENCHMARK_CORRUPTIONS) * len(severities) / total_ours
    print(f"whole set ({len(BENCHMARK_CORRUPTIONS)} × {len(severities)}): ours {total_ours:.1f} s, reference "
          f"{total_ref:.1f} s, ratio {total_ref / total_ours:.1f}×, ours {rate:.0f} img/s")
    per_image = 1000 * total_ours / args.batch
    print(f"ours per {args.size}² image for the whole set: {per_image:.0f} ms (target <= 40 ms at batch 64 on 2 "
          f"threads); slowest corruption vs the reference: {min(t / o for o, t in worst.values()):.2f}× "
          f"(target >= 1)")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
