"""Pretraining speed: the batched MPD / LCM warps against the authors' ``mobius-mpd`` (one PIL image at a time),
a training step with MPD vs without on the same batch, and the step time of every method, in one process.

Targets: batched MPD ≥ 10× ``mobius-mpd`` per image; a SimCLR step with MPD ≤ 1.1× the step without; an ASTrA
step ≤ 2× an ACL step.

    python perf/pretrain_throughput.py [--size 224 --n 64] [--batch 256] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import random

import numpy as np
import torch
from PIL import Image

os.environ.setdefault("SSL_ROBUSTBENCH_PROGRESS", "0")

from ssl_robustbench.backbones import build_backbone  # noqa: E402
from ssl_robustbench.methods import METHODS  # noqa: E402
from ssl_robustbench.methods.self_at import SelfAT  # noqa: E402
from ssl_robustbench.runinfo import resolve_device  # noqa: E402
from ssl_robustbench.transforms.augment import AUGMENTATIONS  # noqa: E402
from ssl_robustbench.transforms.views import ViewGenerator, preset  # noqa: E402

from timing import best_of, interleaved  # noqa: E402


def warp_speed(args, device) -> None:
    from mobius_mpd.torch_transform import MobiusMPDTransform

    x = torch.rand(args.n, 3, args.size, args.size, device=device)
    pil = [Image.fromarray((img.permute(1, 2, 0).cpu().numpy() * 255).astype(np.uint8)) for img in x]
    reference = MobiusMPDTransform(p=1.0, min=0.2, max=0.4)
    random.seed(0)
    ref = best_of(lambda: [reference(im) for im in pil], device, 1)
    for name in ("mpd", "lcm"):
        aug = AUGMENTATIONS.get(name)(p=1.0)
        g = torch.Generator(device=device).manual_seed(0)
        ours = best_of(lambda a=aug, gen=g: a(x, gen), device)
        print(f"{name} batched: {args.n / ours:9.0f} img/s at {args.size}²" + (
            f"   mobius-mpd (PIL, per image): {args.n / ref:7.0f} img/s   ratio {ref / ours:6.1f}x (target >= 10)"
            if name == "mpd" else ""))


def step_time(method: str, aug: tuple[str, ...], args, device, repeats: int = 3, tries: int = 3,
              **method_args) -> float:
    """Seconds per training step: the best of ``tries`` runs of ``repeats`` steps."""
    torch.manual_seed(0)
    cls = METHODS.get(method)
    model = cls(build_backbone("tiny_resnet"), cls.Config(**method_args)).to(device)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    views_of = ViewGenerator(list(cls.default_views), default_size=48, color_strength=1.0,
                             extra=tuple(preset(a, method) for a in aug))
    x = torch.rand(args.batch, 3, 64, 64, device=device)
    g = torch.Generator(device=device).manual_seed(0)

    # Self-AT attacks [0, 1] pixels (its recipes set mean 0, std 1); the others see normalized views
    normalize = (lambda v: v) if issubclass(cls, SelfAT) else (lambda v: (v - 0.5) / 0.25)

    def step():
        loss = model([normalize(v) for v in views_of(x, g)])["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    return best_of(lambda: [step() for _ in range(repeats)], device, tries) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(f"device {device} ({torch.get_num_threads()} threads)")
    warp_speed(args, device)
    (plain, mpd, lcm), _ = interleaved([lambda aug=aug: step_time("simclr", aug, args, device, repeats=5)
                                        for aug in ((), ("mpd",), ("lcm",))], rounds=3)
    print(f"SimCLR step, tiny ResNet, batch {args.batch}, 2 × 48² views from 64² images (best of 3 interleaved rounds "
          f"of 5 steps): {plain * 1000:.0f} ms; "
          f"+MPD {mpd * 1000:.0f} ms ({mpd / plain:.2f}x, target <= 1.10); +LCM {lcm * 1000:.0f} ms "
          f"({lcm / plain:.2f}x, target <= 1.10)")
    print(f"{'method':12s} {'views':>5s} {'step (ms)':>10s}")
    for method in METHODS.names():
        if issubclass(METHODS.get(method), SelfAT):  # adversarial SSL: below (DeACL also needs a teacher)
            continue
        views = sum(s.count for s in METHODS.get(method).default_views)
        print(f"{method:12s} {views:5d} {step_time(method, (), args, device) * 1000:10.0f}")
    # ASTrA vs ACL: 10 steps each (one policy update per 10 steps, as published), smaller batch
    args.batch = 128
    (acl, astra), rounds = interleaved([
        lambda: step_time("acl", (), args, device, repeats=10, tries=1),
        lambda: step_time("acl", (), args, device, repeats=10, tries=1, strategy="astra", sim_weight=0.5)], rounds=3)
    print(f"ACL step (PGD-5, batch 128): {acl * 1000:.0f} ms; ASTrA step (per-sample attacks of 3-14 steps, policy "
          f"update every 10 steps): {astra * 1000:.0f} ms ({astra / acl:.2f}x, target <= 2.00; best of 3 "
          f"interleaved rounds of 10 steps, per-round ratios {', '.join(f'{b / a:.2f}' for a, b in rounds)})")


if __name__ == "__main__":
    main()
