"""On-the-fly ImageNet-C and ImageNet-PD evaluation throughput against the clean suite's, same model, same run.

Streams the same images through ``top1_accuracy`` (the loop every suite uses) clean, under each of the 15
corruptions at severity 3 (generated on the device inside the loop) and under each PD view; prints img/s and
the ratio to clean (target ≥ 0.7). Default model: the bundled SimCLR tiny ResNet on the embedded test set (64²);
``--arch torchvision/resnet50 --size 224`` measures a ResNet-50 (random init: speed only) on 224² images.

With ``--memory`` it also evaluates a released-layout tree (JPEG files, read from disk batch by batch) of
``--n`` and of 4 × ``--n`` images in fresh processes and prints each one's peak RSS: streaming means no growth.

    python perf/shift_eval_throughput.py [--arch torchvision/resnet50 --size 224 --n 256] [--memory]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import torch
from torch.utils.data import DataLoader, TensorDataset

os.environ.setdefault("SSL_ROBUSTBENCH_PROGRESS", "0")

from ssl_robustbench.backbones import build_backbone  # noqa: E402
from ssl_robustbench.backbones.base import ImageClassifier  # noqa: E402
from ssl_robustbench.benchmarks.base import top1_accuracy  # noqa: E402
from ssl_robustbench.benchmarks.perspective import VIEWS, perspective_view  # noqa: E402
from ssl_robustbench.data import DataRequest, build_dataset  # noqa: E402
from ssl_robustbench.runinfo import resolve_device  # noqa: E402
from ssl_robustbench.transforms.corruptions import BENCHMARK_CORRUPTIONS, corrupt  # noqa: E402
from ssl_robustbench.zoo import get_card, load_model  # noqa: E402
from ssl_robustbench.zoo.download import cache_root  # noqa: E402

from timing import best_of  # noqa: E402


def model_and_images(args, device):
    if args.arch:
        backbone = build_backbone(args.arch)
        model = ImageClassifier(backbone, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                                head=torch.nn.Linear(backbone.num_features, 1000))
        g = torch.Generator().manual_seed(0)
        smooth = torch.nn.functional.interpolate(torch.rand(args.n, 3, 8, 8, generator=g), size=args.size,
                                                 mode="bicubic").clamp(0, 1)
        images, labels = (smooth * 255).round() / 255, torch.randint(0, 1000, (args.n,), generator=g)
    else:
        loaded = load_model(get_card("embedded-simclr-tinyresnet"), quiet=True)
        model = loaded.model
        model.head = torch.nn.Linear(model.backbone.num_features, 10)
        req = DataRequest(split="test", preprocess=loaded.card.preprocess, cache_dir=cache_root())
        test = build_dataset("embedded", req, limit=args.n)
        images = torch.stack([test[i][0] for i in range(len(test))])
        labels = torch.tensor([test[i][1] for i in range(len(test))])
    return model.to(device).eval(), DataLoader(TensorDataset(images, labels), batch_size=args.batch_size)


def peak_rss_of_tree_eval(n: int, size: int) -> float:
    """Writes a JPEG tree of ``n`` embedded images and evaluates it in a fresh process; its peak RSS in MiB."""
    code = f"""
import os, resource, sys, torch
os.environ["SSL_ROBUSTBENCH_PROGRESS"] = "0"
from click.testing import CliRunner
from ssl_robustbench.cli import main
out = sys.argv[1]
r = CliRunner().invoke(main, ["generate", "c", "--out", out + "/c", "--limit", "{n}", "--corruption", "fog",
                              "--severity", "1", "--device", "cpu"])
assert r.exit_code == 0, r.output
r = CliRunner().invoke(main, ["eval", "--suite", "c", "--c-root", out + "/c", "--set", "c.corruptions=[fog]",
                              "--set", "c.severities=[1]", "--set", "c.limit={n}", "--out", out + "/run",
                              "--device", "cpu", "--batch-size", "64"])
assert r.exit_code == 0, r.output
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", code, tmp], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default=None)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many timings per condition")
    args = parser.parse_args()
    device = resolve_device(args.device)
    model, loader = model_and_images(args, device)
    n = len(loader.dataset)
    print(f"{args.arch or 'embedded-simclr-tinyresnet'} on {device} ({torch.get_num_threads()} threads), {n} images "
          f"{tuple(loader.dataset[0][0].shape[-2:])}, batch {args.batch_size}")
    top1_accuracy(model, loader, device=device)  # warm-up
    clean = best_of(lambda: top1_accuracy(model, loader, device=device), device, args.repeats)
    print(f"{'clean':24s} {n / clean:9.1f} img/s")
    ratios = []
    conditions = [(f"c:{c}/3", lambda x, g, c=c: corrupt(x, c, 3, generator=g)) for c in BENCHMARK_CORRUPTIONS]
    conditions += [(f"pd:{v}/{b}", lambda x, g, v=v, b=b: perspective_view(x, v, b, magnitude=0.3, d=1.0))
                   for b in ("black", "padded") for v in VIEWS]
    for name, transform in conditions:
        t = best_of(lambda tr=transform: top1_accuracy(model, loader, device=device, transform=tr), device,
                    args.repeats)
        ratios.append(clean / t)
        print(f"{name:24s} {n / t:9.1f} img/s   {clean / t:5.2f}x of clean")
    c_ratios, pd_ratios = ratios[:15], ratios[15:]
    print(f"ImageNet-C (15 at severity 3): mean {sum(c_ratios) / 15:.2f}x, min {min(c_ratios):.2f}x of clean; "
          f"ImageNet-PD: mean {sum(pd_ratios) / 8:.2f}x, min {min(pd_ratios):.2f}x  (target >= 0.70)")
    if args.memory:
        small, large = peak_rss_of_tree_eval(500, 64), peak_rss_of_tree_eval(2000, 64)
        print(f"peak RSS evaluating a released-layout tree: 500 images {small:.0f} MiB, 2000 images {large:.0f} MiB "
              f"({large / small:.2f}x)")


if __name__ == "__main__":
    main()
