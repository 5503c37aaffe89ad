"""Speed of the batched ImageNet-C engine against its two peers, same images, same run: the reference
``imagecorruptions`` and ``imagecorruptions-imaug`` (numba glass blur; installed by ``make perf`` into
``.perf-peers/``, see ``perf/peers.py``).

Ours: one call per corruption × severity on a batch (default 64 images of 224²), float in, float out, with the
faithful JPEG-85 round trip (the released ImageNet-C is stored that way). Peers: image by image (as their
``corrupt`` works) on the first ``--ref-images`` of the same images, including each image's conversion to a uint8
HWC array and back, scaled to the batch. The peers return unsaved arrays, so a second comparison adds PIL's JPEG-85
round trip of their outputs (what ``make_imagenet_c.py`` does to each image), timed separately. Every time is the
best of ``--repeats`` calls; the spread is the whole set's slowest-run sum over its best-run sum.
Targets: ≤ 40 ms per image for the whole 15 × 5 set at batch 64 on 2 threads, ≥ 35× imagecorruptions-imaug over
the set, and ≥ 1× the faster peer on every corruption × severity.

    python perf/corruption_throughput.py [--batch 64] [--size 224] [--ref-images 4] [--repeats 3] [--peers DIR]
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from peers import DEFAULT_ROOT, load_imaug  # noqa: E402

from ssl_robustbench.allocator import tune_malloc  # noqa: E402
from ssl_robustbench.runinfo import resolve_device  # noqa: E402
from ssl_robustbench.transforms.corruptions import BENCHMARK_CORRUPTIONS, corrupt  # noqa: E402
from ssl_robustbench.transforms.corruptions.ops import _pil_jpeg_roundtrip  # noqa: E402

from corruption_reference import load_reference, reference_batch  # noqa: E402
from timing import times_of  # noqa: E402


def images(n: int, size: int) -> torch.Tensor:
    """Photo-like test images: smooth colour fields with sharp edges and texture, uint8 [n, 3, size, size]."""
    g = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(n, 3, 8, 8, generator=g), size=(size, size), mode="bicubic")
    texture = torch.rand(n, 1, size, size, generator=g) * 0.15
    edges = (torch.rand(n, 1, 16, 16, generator=g) > 0.5).float().repeat_interleave(size // 16, -1)
    edges = edges.repeat_interleave(size // 16, -2)[..., :size, :size] * 0.2
    return ((smooth + texture + edges).clamp(0, 1) * 255).round().to(torch.uint8)


def per_image(apply, x: torch.Tensor) -> list[np.ndarray]:
    """A peer's ``apply(uint8 HWC array) -> array`` on each image of a float batch: uint8 HWC outputs."""
    return [np.array(apply((image * 255).round().byte().permute(1, 2, 0).numpy()), dtype=np.uint8) for image in x]


def peer_floats(apply, x: torch.Tensor, keep: list) -> torch.Tensor:
    """``per_image`` back to a float [B, 3, H, W] batch, as an eval loop needs; ``keep`` receives the uint8
    outputs (the JPEG-85 timing reuses them rather than running the peer again)."""
    keep[:] = per_image(apply, x)
    return torch.stack([torch.from_numpy(a).permute(2, 0, 1) for a in keep]).float() / 255


def peers(args) -> dict:
    """name → apply(array, corruption, severity) for the peers installed here."""
    ref = load_reference()
    found = {"imagecorruptions": lambda a, n, s: reference_batch(ref, n, s, a[None])[0]}
    imaug = load_imaug(Path(args.peers))
    if imaug is None:
        print(f"imagecorruptions-imaug is not installed in {args.peers} (make perf installs it); timing one peer")
    else:
        found["imagecorruptions-imaug"] = lambda a, n, s: imaug.corrupt(a, severity=s, corruption_name=n)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--ref-images", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--severities", default="1,2,3,4,5")
    parser.add_argument("--corruptions", default=",".join(BENCHMARK_CORRUPTIONS))
    parser.add_argument("--peers", default=str(DEFAULT_ROOT), help="folder the peers are installed in")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = resolve_device(args.device)
    applies = peers(args)
    x = (images(args.batch, args.size).float() / 255).to(device)
    x_ref = x[: args.ref_images].cpu()
    scale = args.batch / len(x_ref)
    severities = [int(s) for s in args.severities.split(",")]
    names = args.corruptions.split(",")
    for name in names:  # warm-up: lazy imports, textures, allocator pools, numba's compile
        corrupt(x[:8], name, 1)
        for apply in applies.values():
            per_image(functools.partial(apply, n=name, s=1), x_ref[:1])
    print(f"{args.batch} images {args.size}², device {device}, {torch.get_num_threads()} threads; peers timed on "
          f"{len(x_ref)} images and scaled; best of {args.repeats}; ms per image summed over severities "
          f"{args.severities}; malloc {'tuned as the CLI does' if tune_malloc() else 'glibc defaults'}")
    short = {"imagecorruptions": "ic", "imagecorruptions-imaug": "imaug"}
    print(f"{'corruption':18s} {'ours':>7s} " + " ".join(f"{short[p]:>7s}" for p in applies)
          + f" {'JPEG85':>7s} {'worst÷faster':>13s} {'+JPEG85':>8s}")
    best = {"ours": 0.0, "runs": 0.0, **{p: 0.0 for p in applies}}
    worst_bare = worst_jpeg = (float("inf"), "")
    for name in names:
        sums = dict.fromkeys(["ours", "jpeg", *applies], 0.0)
        rows = []
        for severity in severities:
            g = torch.Generator(device=device).manual_seed(severity)
            ours = times_of(functools.partial(corrupt, x, name, severity, generator=g), device, args.repeats)
            best["runs"] += max(ours) / args.batch
            cond = {"ours": min(ours) / args.batch}
            outputs: list[np.ndarray] = []
            for peer, apply in applies.items():
                run = functools.partial(peer_floats, functools.partial(apply, n=name, s=severity), x_ref, outputs)
                cond[peer] = min(times_of(run, device, args.repeats)) / len(x_ref)
            # PIL's JPEG-85 save + load of the last peer's outputs, as make_imagenet_c.py stores each image
            save = functools.partial(_pil_jpeg_roundtrip, torch.from_numpy(np.stack(outputs)).permute(0, 3, 1, 2), 85)
            cond["jpeg"] = min(times_of(save, device, args.repeats)) / len(x_ref)
            for key in sums:
                sums[key] += cond[key]
            faster = min(cond[p] for p in applies)
            rows.append((faster / cond["ours"], (faster + cond["jpeg"]) / cond["ours"], severity))
        for key in ("ours", *applies):
            best[key] += sums[key]
        bare, jpeg = min(rows), min(rows, key=lambda r: r[1])
        worst_bare = min(worst_bare, (bare[0], f"{name} s{bare[2]}"))
        worst_jpeg = min(worst_jpeg, (jpeg[1], f"{name} s{jpeg[2]}"))
        print(f"{name:18s} {1000 * sums['ours']:7.1f} " + " ".join(f"{1000 * sums[p]:7.1f}" for p in applies)
              + f" {1000 * sums['jpeg']:7.1f} {bare[0]:8.2f}× s{bare[2]} {jpeg[1]:7.2f}×", flush=True)
    ours_ms = 1000 * best["ours"]
    print(f"whole set ({len(names)} × {len(severities)}), ms per image: ours {ours_ms:.0f} (best of "
          f"{args.repeats}; slowest runs {1000 * best['runs']:.0f}, spread {best['runs'] / best['ours']:.2f}×), "
          + ", ".join(f"{p} {1000 * best[p]:.0f}" for p in applies) + f"; {scale:.0f}× scale-up of the peers")
    print(f"ours per {args.size}² image for the set: {ours_ms:.0f} ms (target <= 40 ms at batch 64 on 2 threads)")
    for peer in applies:
        target = " (target >= 35×)" if peer == "imagecorruptions-imaug" else ""
        print(f"whole set vs {peer}: {best[peer] / best['ours']:.1f}×{target}")
    print(f"slowest corruption × severity vs the faster peer: {worst_bare[0]:.2f}× ({worst_bare[1]}) bare, "
          f"{worst_jpeg[0]:.2f}× ({worst_jpeg[1]}) with the peers' JPEG-85 save (target >= 1)")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
