"""Throughput of the eval path against the raw backbone forward, in one process on the same batch stream.

Prints images/s for (1) the raw backbone forward on batches already in memory (the limit), (2) feature extraction
through the DataLoader, (3) end-to-end clean-suite evaluation (data, normalization, backbone, probe, accuracy),
and the probe-fit time as a fraction of the extraction time. Targets: (3)/(1) ≥ 0.8; probe fit ≤ 5 %.

    python perf/eval_throughput.py [--model embedded-simclr-tinyresnet] [--device cpu] [--batch-size 256]
"""

from __future__ import annotations

import argparse
import dataclasses
import os

import torch
from torch.utils.data import DataLoader

os.environ.setdefault("SSL_ROBUSTBENCH_PROGRESS", "0")

from ssl_robustbench.benchmarks.base import top1_accuracy  # noqa: E402
from ssl_robustbench.config import ProbeConfig  # noqa: E402
from ssl_robustbench.data import DataRequest, build_dataset  # noqa: E402
from ssl_robustbench.probes.features import extract  # noqa: E402
from ssl_robustbench.probes.linear import fit_linear_probe  # noqa: E402
from ssl_robustbench.runinfo import resolve_device  # noqa: E402
from ssl_robustbench.zoo import get_card, load_model  # noqa: E402
from ssl_robustbench.zoo.download import cache_root  # noqa: E402

from timing import best_of  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded-simclr-tinyresnet")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = resolve_device(args.device)
    loaded = load_model(get_card(args.model), quiet=True)
    model = loaded.model.to(device).eval()
    req = DataRequest(split="train", preprocess=loaded.card.preprocess, cache_dir=cache_root())
    train = build_dataset("embedded", req)
    test = build_dataset("embedded", dataclasses.replace(req, split="test"))
    loader = DataLoader(test, batch_size=args.batch_size)
    batches = [(x.to(device), y.to(device)) for x, y in loader]
    n = len(test)

    feats, labels = extract(model.features, DataLoader(train, batch_size=args.batch_size), device=device)
    with torch.inference_mode():
        raw = best_of(lambda: [model.features(x) for x, _ in batches], device, args.repeats)
    extraction = best_of(lambda: extract(model.features, loader, device=device), device, args.repeats)
    fit = best_of(lambda: fit_linear_probe(feats, labels, num_classes=10, cfg=ProbeConfig()), device, args.repeats)
    model.head = fit_linear_probe(feats, labels, num_classes=10, cfg=ProbeConfig()).head.to(device)
    end_to_end = best_of(lambda: top1_accuracy(model, loader, device=device), device, args.repeats)
    train_extraction = extraction * len(train) / n  # the probe is fitted on the train split's features

    print(f"model {args.model} on {device} ({torch.get_num_threads()} threads), batch {args.batch_size}, "
          f"{n} test images, best of {args.repeats}")
    print(f"raw backbone forward      {n / raw:9.1f} img/s   (limit)")
    print(f"feature extraction        {n / extraction:9.1f} img/s   {raw / extraction:5.2f}x of raw")
    print(f"end-to-end clean eval     {n / end_to_end:9.1f} img/s   {raw / end_to_end:5.2f}x of raw  (target >= 0.80)")
    print(f"probe fit ({len(train)} x {feats.shape[1]})  {fit:9.3f} s       {fit / train_extraction:6.1%} of train "
          f"extraction ({train_extraction:.2f} s)  (target <= 5%)")


if __name__ == "__main__":
    main()
