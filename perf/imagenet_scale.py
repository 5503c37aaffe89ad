"""ImageNet-scale dry run without a download: the path a public ResNet-50 takes, end to end, on synthetic data.

Writes a synthetic ImageNet-layout tree (all 1000 wnids, 224–500 px JPEGs of smooth random colour fields),
a released-layout ImageNet-C tree and an ImageNet-PD tree made from it with ``robustbench generate``, then runs
``robustbench eval`` with a torchvision ResNet-50 (random weights saved as a checkpoint file) over the probe,
clean, c on the fly, c from the tree and pd (on the fly), each in a fresh process. Prints images/s per stage —
JPEG decode + resize + crop (the loader alone), the corruption engine at 224², the raw forward — and per eval
step, with each process's peak RSS. Usage:

    python perf/imagenet_scale.py [--per-class 1] [--n-shift 200] [--device cpu] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

CORRUPTIONS = ("gaussian_noise", "defocus_blur", "fog")


def write_imagenet(root: Path, per_class: int, seed: int = 0) -> int:
    """<root>/{train,val}/<wnid>/<wnid>_<i>.JPEG for the 1000 ImageNet-1k wnids; returns the number of files."""
    from ssl_robustbench.data.folders import imagenet_wnids

    rng = np.random.default_rng(seed)
    count = 0
    for split in ("train", "val"):
        for wnid in imagenet_wnids():
            folder = root / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                h, w = (int(v) for v in rng.integers(224, 501, 2))
                low = rng.integers(0, 256, (h // 32 + 2, w // 32 + 2, 3), dtype=np.uint8)
                img = Image.fromarray(low).resize((w, h), Image.BICUBIC)
                img.save(folder / f"{wnid}_{i}.JPEG", quality=90)
                count += 1
    return count


def timed(cmd: list[str], env: dict) -> tuple[float, float, str]:
    """Runs ``cmd``; returns (wall seconds, the process tree's peak RSS in MiB, output)."""
    t = time.perf_counter()
    code = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
            "print('PEAK_RSS_KIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)")
    proc = subprocess.run([sys.executable, "-c", code, *cmd], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    peak = next(int(ln.split()[1]) for ln in proc.stdout.splitlines() if ln.startswith("PEAK_RSS_KIB")) / 1024
    return wall, peak, proc.stdout


def stage_rates(root: Path, device: torch.device, batch: int) -> dict[str, float]:
    """images/s of the loader alone, of the corruption engine at 224² and of the raw ResNet-50 forward."""
    import torchvision

    from ssl_robustbench.data import DataRequest, build_dataset, eval_loader
    from ssl_robustbench.data.preprocess import Preprocess
    from ssl_robustbench.transforms.corruptions import corrupt

    ds = build_dataset("imagenet", DataRequest(split="val", preprocess=Preprocess(), root=root))
    run = argparse.Namespace(batch_size=batch, workers=min(8, os.cpu_count() or 1))
    t, n = time.perf_counter(), 0
    batches = []
    for x, _ in eval_loader(ds, run):
        n += len(x)
        if len(batches) < 2:
            batches.append(x)
    rates = {"decode+resize+crop": n / (time.perf_counter() - t)}
    x = batches[0].to(device)
    g = torch.Generator(device=device).manual_seed(0)
    for name in CORRUPTIONS:
        corrupt(x[:8], name, 3, generator=g)  # warm-up
        t = time.perf_counter()
        corrupt(x, name, 3, generator=g)
        rates[f"corrupt {name} s3"] = len(x) / (time.perf_counter() - t)
    model = torchvision.models.resnet50().eval().to(device)
    with torch.inference_mode():
        model(x[:8])
        t = time.perf_counter()
        model(x)
    rates["resnet50 forward"] = len(x) / (time.perf_counter() - t)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=1, help="images per class in train and in val")
    parser.add_argument("--n-shift", type=int, default=200, help="images per c/pd condition")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--keep", type=Path, default=None, help="write the trees here and keep them")
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    work = args.keep or Path(tempfile.mkdtemp(prefix="imagenet-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SSL_ROBUSTBENCH_CACHE": str(work / "cache"), "SSL_ROBUSTBENCH_PROGRESS": "0"}
    torch.set_num_threads(min(torch.get_num_threads(), os.cpu_count() or 1))
    device = torch.device(args.device)
    t = time.perf_counter()
    files = write_imagenet(work / "imagenet", args.per_class)
    print(f"synthetic ImageNet: {files} JPEGs, 1000 wnids, in {time.perf_counter() - t:.0f} s ({work})")
    import torchvision
    from safetensors.torch import save_file

    r50 = torchvision.models.resnet50()
    save_file({k: v for k, v in r50.state_dict().items() if not k.startswith("fc.")}, str(work / "r50.safetensors"))
    rb = str(bin_dir / "robustbench")
    data = ["--data", "imagenet", "--data-root", str(work / "imagenet")]
    common = ["--model", str(work / "r50.safetensors"), "--arch", "torchvision/resnet50", *data,
              "--set", "data.eval_split=val", "--device", args.device, "--batch-size", str(args.batch_size),
              "--workers", str(min(8, os.cpu_count() or 1))]
    shift = ["--n-shift", str(args.n_shift), "--set", f"c.corruptions=[{','.join(CORRUPTIONS)}]",
             "--set", "c.severities=[3]"]
    steps = [
        ("generate c (tree)", [rb, "generate", "c", "--out", str(work / "imagenet-c"), *data, "--split", "val",
                               "--limit", str(args.n_shift), "--severity", "3", "--device", args.device,
                               *[a for c in CORRUPTIONS for a in ("--corruption", c)]],
         args.n_shift * len(CORRUPTIONS)),
        ("generate pd (tree)", [rb, "generate", "pd", "--out", str(work / "imagenet-pd"), *data, "--split", "val",
                                "--limit", str(args.n_shift), "--device", args.device], args.n_shift * 8),
        ("probe fit + clean", [rb, "eval", *common, "--out", str(work / "run")], 2000 * args.per_class),
        ("c on the fly", [rb, "eval", *common, *shift, "--suite", "c", "--out", str(work / "run-c")],
         args.n_shift * (1 + len(CORRUPTIONS))),
        ("c from the tree", [rb, "eval", *common, *shift, "--suite", "c", "--c-root", str(work / "imagenet-c"),
                             "--out", str(work / "run-ctree")], args.n_shift * (1 + len(CORRUPTIONS))),
        ("pd on the fly", [rb, "eval", *common, "--n-shift", str(args.n_shift), "--suite", "pd",
                           "--out", str(work / "run-pd")], args.n_shift * 9),
    ]
    print(f"device {args.device}, {torch.get_num_threads()} threads, ResNet-50 224², batch {args.batch_size}")
    print(f"{'step':<22} {'images':>7} {'wall':>8} {'img/s':>8} {'peak RSS':>10}")
    for name, cmd, images in steps:
        wall, peak, out = timed(cmd, env)
        print(f"{name:<22} {images:>7} {wall:>7.1f}s {images / wall:>8.1f} {peak:>7.0f} MiB")
    probe = json.loads((work / "run" / "protocol.json").read_text())
    print(f"protocol hash of clean: {probe['suites']['clean']} (train {probe['train_data']['n']} images, "
          f"eval {probe['eval_data']['n']}, file lists {probe['eval_data']['files'][:12]}…)")
    print("stages (one process, loader with workers, one batch for corruption and forward):")
    for name, rate in stage_rates(work / "imagenet", device, args.batch_size).items():
        print(f"  {name:<28} {rate:>8.1f} img/s")
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  this script's peak RSS {peak_self:.0f} MiB")
    if args.keep is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
