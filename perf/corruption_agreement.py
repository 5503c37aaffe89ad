"""Per-pixel agreement of the batched ImageNet-C engine with its reference: Hendrycks' own ``imagenet_c`` code
(make_imagenet_c.py, ImageMagick through Wand; the default) or the ``imagecorruptions`` package.

Same images (``--n`` photo-like 224² images), severities 1–5; stochastic corruptions get the same random draws
(recorded from our engine, replayed into numpy), except shot and impulse noise (numpy's Poisson sampler and
scikit-image's own generator cannot be replayed), which are compared by statistics. Prints, per corruption, the
largest per-pixel difference in uint8 levels, the largest |mean difference| (bias) over severities and the
fraction of values that differ at all; for the two noises, the mean absolute change from the clean image, ours vs
the reference.

    python perf/corruption_agreement.py [--n 4] [--size 224] [--reference hendrycks|imagecorruptions]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ssl_robustbench.transforms.corruptions import ALL_CORRUPTIONS, corrupt  # noqa: E402

from corruption_reference import RecordingDraws, load_hendrycks, load_reference, reference_batch, wand_missing  # noqa: E402
from corruption_throughput import images  # noqa: E402

UNREPLAYABLE = ("shot_noise", "impulse_noise")
MAGICK = ("motion_blur", "snow")  # ImageMagick (through Wand) in Hendrycks' code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--size", type=int, default=224, help="hendrycks' code only knows 224")
    parser.add_argument("--reference", default="hendrycks", choices=["hendrycks", "imagecorruptions"])
    args = parser.parse_args()
    missing = wand_missing() if args.reference == "hendrycks" else None  # asked before load_hendrycks
    ref = load_hendrycks() if args.reference == "hendrycks" else load_reference()
    imgs = images(args.n, args.size)
    x, clean = imgs.float() / 255, imgs.permute(0, 2, 3, 1).numpy().astype(float)
    print(f"{args.n} images {args.size}², severities 1-5, ImageNet constants, reference {args.reference}")
    print(f"{'corruption':18s} {'max |diff|':>10s} {'max |mean diff|':>16s} {'values differing':>17s}")
    for name in ALL_CORRUPTIONS:
        if name in MAGICK and missing:
            print(f"{name:18s} not compared: ImageMagick (Wand) unavailable; apt-get install libmagickwand-dev")
            continue
        worst, bias, differing, stats = 0.0, 0.0, [], []
        for severity in range(1, 6):
            draws = None if name in UNREPLAYABLE else RecordingDraws(seed=severity)
            ours = corrupt(x, name, severity, draws=draws, generator=torch.Generator().manual_seed(severity),
                           table="imagenet", faithful=False, reference=args.reference)
            ours = (ours * 255).round().permute(0, 2, 3, 1).numpy()
            theirs = reference_batch(ref, name, severity, imgs.permute(0, 2, 3, 1).numpy(), draws).astype(float)
            if draws is None:
                stats.append((np.abs(ours - clean).mean(), np.abs(theirs - clean).mean()))
                continue
            diff = ours - theirs
            worst = max(worst, float(np.abs(diff).max()))
            bias = max(bias, abs(float(diff.mean())))
            differing.append(float((diff != 0).mean()))
        if stats:
            text = ", ".join(f"s{i + 1} {a:.2f}/{b:.2f}" for i, (a, b) in enumerate(stats))
            print(f"{name:18s} statistics: mean |change| ours/ref {text}")
        else:
            print(f"{name:18s} {worst:10.0f} {bias:16.4f} {100 * max(differing):16.3f}%")


if __name__ == "__main__":
    main()
