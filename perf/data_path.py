"""The data path of a released ImageNet-layout tree against its limits, in one process (issue 17, item 2).

Writes ``--n`` synthetic JPEGs at ImageNet val's typical sizes (500×375, 375×500, 500×333; quality 90) under
wnid folders, then prints images/s and ratios, all measured in this run with the same workers and batch:

1. JPEG decode alone (PIL, as the loader's ``load_rgb``; no resize): the decode limit.
2. The project's eval path (``CheckedImageFolder`` + ``Preprocess()``: decode, resize 256 on uint8, crop 224 in the
   workers; each uint8 batch to float in the main process) through ``ImageLoader``, as ``eval_loader`` builds it;
   target ≥ 0.9× of (1). The float-first order of an earlier release is timed beside it.
3. On CUDA only: ``torchvision.io.decode_jpeg`` on the device (batched), resize and crop there.
4. Feature extraction of the tree by a torchvision ResNet-50 (``probes.features.extract``, the clean suite's
   loop) against the raw forward on batches already in memory; target ≥ 0.8×.

    python perf/data_path.py [--n 256] [--workers 2] [--batch-size 64] [--device cpu] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

os.environ.setdefault("SSL_ROBUSTBENCH_PROGRESS", "0")

from ssl_robustbench.data import ImageLoader  # noqa: E402
from ssl_robustbench.data.folders import CheckedImageFolder, load_rgb  # noqa: E402
from ssl_robustbench.data.preprocess import INTERPOLATIONS, Preprocess  # noqa: E402
from ssl_robustbench.probes.features import extract  # noqa: E402

from timing import best_of, interleaved, times_of  # noqa: E402

SIZES = ((500, 375), (375, 500), (500, 333))
WNIDS = ("n01440764", "n01443537", "n01484850", "n01491361")


def write_tree(root: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` photo-like JPEGs (a smooth colour field plus grain) spread over four wnid folders."""
    rng = np.random.default_rng(seed)
    files = []
    for i in range(n):
        w, h = SIZES[i % len(SIZES)]
        field = Image.fromarray(rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
        grain = rng.integers(-12, 13, (h, w, 3))
        path = root / WNIDS[i % len(WNIDS)] / f"{i:05d}.JPEG"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(np.asarray(field, np.int16) + grain, 0, 255).astype(np.uint8)).save(path, quality=90)
        files.append(path)
    return files


class DecodeOnly(Dataset):
    """The decode limit: each file decoded to an RGB uint8 tensor, nothing else."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        return v2.functional.pil_to_tensor(load_rgb(str(self.files[i])))


def float_first(p: Preprocess) -> v2.Compose:
    """The order this project used before: to float, then resize and crop (slower, further from PIL)."""
    return v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
                       v2.Resize(p.resize_size, interpolation=INTERPOLATIONS[p.interpolation], antialias=True),
                       v2.CenterCrop(p.input_size)])


def drain(loader: DataLoader) -> None:
    for _ in loader:
        pass


def gpu_decode_rate(files: list[Path], p: Preprocess, device: torch.device, batch: int, repeats: int) -> float:
    """images/s of batched ``decode_jpeg`` on the device, then ``p``'s resize and crop there (file reads excluded)."""
    from torchvision.io import decode_jpeg

    data = [torch.frombuffer(bytearray(f.read_bytes()), dtype=torch.uint8) for f in files]
    resize = v2.Resize(p.resize_size, interpolation=INTERPOLATIONS[p.interpolation], antialias=True)
    crop = v2.CenterCrop(p.input_size)

    def run() -> None:
        for i in range(0, len(data), batch):
            images = decode_jpeg(data[i:i + batch], device=device)
            torch.stack([crop(resize(img)) for img in images]).float().div_(255)

    return len(files) / best_of(run, device, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    with tempfile.TemporaryDirectory(prefix="data-path-") as tmp:
        files = write_tree(Path(tmp), args.n)
        p = Preprocess()
        loader_kw = {"batch_size": args.batch_size, "num_workers": args.workers, "pin_memory": cuda,
                     "persistent_workers": args.workers > 0}
        decode = DataLoader(DecodeOnly(files), collate_fn=list, **loader_kw)
        tree = CheckedImageFolder(Path(tmp), transform=p.transform(None))
        ours = ImageLoader(tree, **loader_kw)
        old = DataLoader(CheckedImageFolder(Path(tmp), transform=float_first(p)), **loader_kw)
        cpu = torch.device("cpu")
        for ld in (decode, ours, old):  # start the persistent workers before any timing
            drain(ld)
        best, rounds = interleaved([lambda ld=ld: times_of(lambda: drain(ld), cpu, 1)[0] for ld in (decode, ours, old)],
                                   rounds=args.repeats)
        rates = dict(zip(("decode", "ours", "old"), (args.n / t for t in best), strict=True))
        print(f"{args.n} JPEGs (500x375-class, q 90), {args.workers} workers, batch {args.batch_size}, "
              f"{torch.get_num_threads()} torch threads, best of {args.repeats} interleaved rounds")
        print(f"JPEG decode alone (limit)          {rates['decode']:8.1f} img/s")
        print(f"decode + resize 256 + crop 224     {rates['ours']:8.1f} img/s   "
              f"{rates['ours'] / rates['decode']:5.2f}x of decode  (target >= 0.90; per round "
              f"{', '.join(format(t_decode / t_ours, '.2f') for t_decode, t_ours, _ in rounds)})")
        print(f"  float-first order (before)       {rates['old']:8.1f} img/s   "
              f"{rates['old'] / rates['decode']:5.2f}x of decode")
        if cuda:
            rate = gpu_decode_rate(files, p, device, args.batch_size, args.repeats)
            print(f"decode_jpeg on {device} + resize/crop {rate:8.1f} img/s")
        import torchvision

        model = torchvision.models.resnet50().eval().to(device, memory_format=torch.channels_last)
        model.fc = torch.nn.Identity()
        batches = [x.to(device) for x, _ in ours]
        with torch.inference_mode():
            raw = best_of(lambda: [model(x) for x in batches], device, args.repeats)
        through = best_of(lambda: extract(model, ours, device=device), device, args.repeats)
        print(f"ResNet-50 224² forward (limit)     {args.n / raw:8.1f} img/s")
        print(f"eval of the tree (extract)         {args.n / through:8.1f} img/s   "
              f"{raw / through:5.2f}x of forward  (target >= 0.80)")


if __name__ == "__main__":
    main()
