"""Speed of moving boxes with MPD / LCM views (``transforms/geometric.py``) at COCO scale, against the reference
the tests check them with — warping each box's filled-rectangle mask and taking its bounding box — in the same
process. Prints boxes/s of both and the ratio, and the image warp's images/s. Usage:

    python perf/geometric_boxes.py [--boxes 200] [--size 640 480]
"""

from __future__ import annotations

import argparse
import time

import torch
from torchvision import tv_tensors

from ssl_robustbench.transforms.geometric import LogConformal, MobiusPerspective


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, default=200)
    parser.add_argument("--size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"))
    args = parser.parse_args()
    w, h = args.size
    g = torch.Generator().manual_seed(0)
    x1 = torch.rand(args.boxes, generator=g) * (w - 80)
    y1 = torch.rand(args.boxes, generator=g) * (h - 80)
    sizes = 10 + torch.rand(args.boxes, 2, generator=g) * 150
    boxes = torch.stack((x1, y1, (x1 + sizes[:, 0]).clamp(max=w), (y1 + sizes[:, 1]).clamp(max=h)), 1)
    print(f"{args.boxes} boxes on a {w}x{h} canvas, {torch.get_num_threads()} torch threads")
    for name, t in (("mpd", MobiusPerspective(view="left", high=0.3)), ("lcm", LogConformal())):
        torch.manual_seed(0)
        params = {"apply": True, **t.sample()}
        start = time.perf_counter()
        t.transform(tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(h, w)), params)
        ours = time.perf_counter() - start
        start = time.perf_counter()
        for x1_, y1_, x2_, y2_ in boxes[:20].long().tolist():  # the mask reference, on 20 boxes
            mask = torch.zeros(1, h, w, dtype=torch.uint8)
            mask[0, y1_:y2_, x1_:x2_] = 1
            t.transform(tv_tensors.Mask(mask), params)[0].nonzero()
        reference = (time.perf_counter() - start) / 20 * args.boxes
        image = tv_tensors.Image(torch.randint(0, 256, (3, h, w), dtype=torch.uint8))
        start = time.perf_counter()
        for _ in range(5):
            t.transform(image, params)
        per_image = (time.perf_counter() - start) / 5
        print(f"{name}: boxes {args.boxes / ours:8.0f}/s   mask reference {args.boxes / reference:6.0f}/s   "
              f"ratio {reference / ours:5.1f}x   image warp {1 / per_image:6.1f} img/s")


if __name__ == "__main__":
    main()
