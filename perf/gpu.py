"""GPU throughput of the whole benchmark on one CUDA device: a torchvision ResNet-50 (random init: speed only) at
batch 256, bf16 autocast, channels_last.

Prints, each as images/s with its reference in the same run:
- raw forward, and clean evaluation through ``top1_accuracy`` (the loop every suite uses): ratio to raw;
- each of the 15 ImageNet-C corruptions at severity 3 generated on the device (faithful=False: the JPEG step is a
  CPU encoder; goal ≥ 5,000 img/s each on an H100-class GPU), and the 8 PD views;
- PGD-20 against the limit 20 × (forward + backward) of the same batch;
- the MPD warp (batched, on the device) against the authors' ``mobius-mpd`` (per image, CPU) when installed;
- the projected time for ImageNet val: 50,000 images × (clean + 75 C + 8 PD).
On a machine without CUDA it prints one line saying so and exits 0 (``--smoke`` runs every step on the CPU with a
tiny batch instead, to check the script itself; its figures mean nothing).

    python perf/gpu.py [--batch-size 256] [--batches 4] [--repeats 3] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
from torch.utils.data import DataLoader, TensorDataset

os.environ.setdefault("SSL_ROBUSTBENCH_PROGRESS", "0")

from ssl_robustbench.attacks.base import ThreatModel  # noqa: E402
from ssl_robustbench.attacks.pgd import pgd  # noqa: E402
from ssl_robustbench.backbones import build_backbone  # noqa: E402
from ssl_robustbench.backbones.base import ImageClassifier  # noqa: E402
from ssl_robustbench.benchmarks.base import top1_accuracy  # noqa: E402
from ssl_robustbench.benchmarks.perspective import VIEWS, perspective_view  # noqa: E402
from ssl_robustbench.transforms.corruptions import BENCHMARK_CORRUPTIONS, corrupt  # noqa: E402
from ssl_robustbench.transforms.mobius import mobius_warp  # noqa: E402

from timing import best_of  # noqa: E402


class Autocast(torch.nn.Module):
    """The model under bf16 autocast (how a GPU eval runs it), logits back in float32."""

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        super().__init__()
        self.model, self.device_type = model, device.type

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            return self.model(x.contiguous(memory_format=torch.channels_last)).float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=4, help="batches per timed pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="run every step on the CPU, tiny batch")
    args = parser.parse_args()
    if args.smoke:
        args.batch_size, args.batches, args.repeats = 4, 1, 1
    elif not torch.cuda.is_available():
        print("perf/gpu.py: no CUDA device here; nothing measured (run it on a GPU machine)")
        return
    device = torch.device("cpu" if args.smoke else "cuda")
    torch.backends.cudnn.benchmark = True
    backbone = build_backbone("torchvision/resnet50")
    net = ImageClassifier(backbone, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                          head=torch.nn.Linear(backbone.num_features, 1000))
    net = net.to(device).to(memory_format=torch.channels_last).eval()
    model = Autocast(net, device).eval()
    b, n = args.batch_size, args.batch_size * args.batches
    g = torch.Generator(device=device).manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(b, 3, 8, 8, generator=g, device=device), size=224,
                                             mode="bicubic").clamp(0, 1)
    x = (smooth * 255).round() / 255
    y = torch.randint(0, 1000, (b,), generator=g, device=device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU smoke run"
    print(f"{name}, torch {torch.__version__}, ResNet-50 224², batch {b}, bf16, "
          f"channels_last, best of {args.repeats}")

    def rate(fn, images: int) -> float:
        return images / best_of(fn, device, args.repeats)

    def raw() -> None:
        with torch.inference_mode():
            for _ in range(args.batches):
                model(x)

    raw()  # warm-up (cudnn autotuning)
    raw_rate = rate(raw, n)
    loader = DataLoader(TensorDataset(x.cpu().repeat(args.batches, 1, 1, 1), y.cpu().repeat(args.batches)),
                        batch_size=b, pin_memory=True)
    clean_rate = rate(lambda: top1_accuracy(model, loader, device=device), n)
    print(f"{'raw forward':28s} {raw_rate:9.0f} img/s")
    print(f"{'clean eval (top1_accuracy)':28s} {clean_rate:9.0f} img/s   {clean_rate / raw_rate:.2f}× raw "
          "(target ≥ 0.8)")

    print("ImageNet-C severity 3 on the device (goal ≥ 5,000 img/s each on an H100-class GPU):")
    c_rates = {}
    for name in BENCHMARK_CORRUPTIONS:
        corrupt(x[:8], name, 3, generator=g, faithful=False)  # warm-up
        c_rates[name] = rate(lambda nm=name: corrupt(x, nm, 3, generator=g, faithful=False), b)
        print(f"  {name:26s} {c_rates[name]:9.0f} img/s   {'ok' if c_rates[name] >= 5000 else 'below goal'}")
    pd_rates = {}
    for view in VIEWS:
        for background in ("black", "padded"):
            key = f"{view}/{background}"
            pd_rates[key] = rate(lambda v=view, bg=background: perspective_view(x, v, bg, magnitude=0.3, d=1.0), b)
    print(f"PD views on the device: {min(pd_rates.values()):.0f}–{max(pd_rates.values()):.0f} img/s")

    threat = ThreatModel("Linf", 4 / 255)
    xs, ys = x[:64], y[:64]
    k = len(xs)

    def fwd_bwd() -> None:
        for _ in range(20):
            z = xs.clone().requires_grad_(True)
            torch.nn.functional.cross_entropy(model(z), ys).backward()

    pgd_s = best_of(lambda: pgd(model, xs, ys, threat=threat, steps=20), device, args.repeats)
    limit_s = best_of(fwd_bwd, device, args.repeats)
    print(f"{f'PGD-20 ({k} images)':28s} {k / pgd_s:9.0f} img/s   {limit_s / pgd_s:.2f}× the 20·(fwd+bwd) limit")

    c_mask = torch.zeros(b, device=device)
    warp_rate = rate(lambda: mobius_warp(x, c_mask + 0.2, c_mask, background="black"), b)
    try:
        from mobius_mpd.torch_transform import MobiusMPDTransform
        from PIL import Image

        t = MobiusMPDTransform(p=1.0)
        images = [Image.fromarray((x[i].permute(1, 2, 0).cpu().numpy() * 255).astype("uint8"))
                  for i in range(min(16, b))]
        ref_rate = len(images) / best_of(lambda: [t(im) for im in images], torch.device("cpu"), args.repeats)
        print(f"{'MPD warp (batched, device)':28s} {warp_rate:9.0f} img/s   {warp_rate / ref_rate:.0f}× mobius-mpd "
              "(per image, CPU; target ≥ 10×)")
    except ImportError:
        print(f"{'MPD warp (batched, device)':28s} {warp_rate:9.0f} img/s   (mobius-mpd not installed)")

    per_image = 1 / clean_rate + sum(5 * (1 / c_rates[c] + 1 / clean_rate) for c in c_rates) \
        + sum(1 / r + 1 / clean_rate for r in pd_rates.values())
    print(f"projected ImageNet val (50,000 × clean + 75 C + 8 PD): {50_000 * per_image / 60:.1f} min "
          "(severity-3 rates for every severity; generation + evaluation on one GPU, data loading not included)")


if __name__ == "__main__":
    sys.exit(main())
