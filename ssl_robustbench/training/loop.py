"""The one SSL training loop: batched on-device views, warmup-cosine SGD/AdamW, k-NN monitor, exact resume.

Every random draw of epoch ``e`` (shuffling, augmentation) comes from generators seeded by ``(seed, e)``, so a run
resumed from its end-of-epoch checkpoint continues exactly as if it had never stopped.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import time
from pathlib import Path

import torch
import yaml
from safetensors.torch import save
from torch.utils.data import DataLoader

from ssl_robustbench.backbones import ImageClassifier, build_backbone
from ssl_robustbench.config import build
from ssl_robustbench.data import DataRequest, build_dataset, eval_loader
from ssl_robustbench.data.preprocess import Preprocess
from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import atomic_open, atomic_write_bytes, atomic_write_text, sha256_file
from ssl_robustbench.methods import METHODS
from ssl_robustbench.probes.features import extract, knn_accuracy
from ssl_robustbench.progress import console, track
from ssl_robustbench.runinfo import resolve_device, seed_everything, start_run
from ssl_robustbench.training.config import PretrainConfig
from ssl_robustbench.training.schedule import warmup_cosine
from ssl_robustbench.transforms.views import ViewGenerator, preset
from ssl_robustbench.zoo.download import cache_root


def _optimizer(cfg: PretrainConfig, params, lr: float) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
    raise UserError(f"optimizer must be sgd or adamw, not {cfg.optimizer!r}")


def _monitor(backbone: torch.nn.Module, cfg: PretrainConfig, req: DataRequest, device: torch.device) -> float:
    """k-NN top-1 of the current backbone: train split as memory bank, the held-out split as queries."""
    model = ImageClassifier(backbone, mean=cfg.mean, std=cfg.std).eval()
    banks = []
    for split, limit in ((cfg.data.train_split, cfg.data.train_limit), (cfg.monitor_split, cfg.data.eval_limit)):
        ds = build_dataset(cfg.data.name, dataclasses.replace(req, split=split), limit=limit)
        banks.append(extract(model.features, eval_loader(ds, cfg.run), device=device, description=f"k-NN {split}"))
    backbone.train()
    (xtr, ytr), (xte, yte) = banks
    return knn_accuracy(xtr, ytr, xte, yte, k=cfg.knn_k)


def pretrain(cfg: PretrainConfig, run_dir: Path) -> Path:
    """Trains ``cfg.method`` on ``cfg.data``; resumes from ``run_dir/checkpoint.pt`` when present.

    Returns:
        Path of the exported backbone (``backbone.safetensors``); ``card.yaml`` beside it describes it.
    """
    method_cls = METHODS.get(cfg.method)
    try:
        method_cfg = build(method_cls.Config, cfg.method_args, where="method_args.")
    except ValueError as err:
        raise UserError(str(err)) from None
    cfg = dataclasses.replace(cfg, method_args=dataclasses.asdict(method_cfg))  # record the resolved defaults
    device = resolve_device(cfg.run.device)
    start_run(run_dir, cfg, device)
    seed_everything(cfg.run.seed)
    cache = Path(cfg.run.cache_dir) if cfg.run.cache_dir else cache_root()
    req = DataRequest(split=cfg.data.train_split, preprocess=Preprocess(input_size=cfg.input_size, crop_pct=1.0),
                      root=Path(cfg.data.root) if cfg.data.root else None, download=cfg.data.download,
                      cache_dir=cache)
    train_ds = build_dataset(cfg.data.name, req, limit=cfg.data.train_limit)
    model = method_cls(build_backbone(cfg.arch), method_cfg).to(device)
    batch = cfg.run.batch_size
    steps_per_epoch = len(train_ds) // batch
    if steps_per_epoch == 0:
        raise UserError(f"batch size {batch} is larger than the training set ({len(train_ds)} images)")
    base_lr = cfg.lr * batch / 256
    opt = _optimizer(cfg, model.parameters(), base_lr)
    mean = torch.tensor(cfg.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(cfg.std, device=device).view(1, -1, 1, 1)
    views_of = ViewGenerator(list(cfg.views) or list(method_cls.default_views),
                             default_size=cfg.view_size or cfg.input_size, color_strength=cfg.color_strength,
                             extra=tuple(preset(name, cfg.method) for name in cfg.aug))
    ckpt, log_file = run_dir / "checkpoint.pt", run_dir / "log.csv"
    start, log = 0, []
    if ckpt.is_file():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start = int(state["epoch"]) + 1
        log = [r for r in csv.DictReader(io.StringIO(log_file.read_text())) if int(r["epoch"]) <= start]
        console.print(f"resuming {run_dir} after epoch {start}")
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    for epoch in range(start, cfg.epochs):
        shuffle = torch.Generator().manual_seed(cfg.run.seed * 100_003 + epoch)
        views_rng = torch.Generator(device=device).manual_seed(cfg.run.seed * 100_019 + epoch)
        loader = DataLoader(train_ds, batch_size=batch, shuffle=True, drop_last=True, generator=shuffle,
                            num_workers=cfg.run.workers)
        model.train()
        total, t0 = 0.0, time.perf_counter()
        for i, (x, _) in enumerate(track(loader, total=steps_per_epoch, description=f"epoch {epoch + 1}/{cfg.epochs}")):
            lr = warmup_cosine(epoch * steps_per_epoch + i, total=cfg.epochs * steps_per_epoch,
                               warmup=cfg.warmup_epochs * steps_per_epoch, base=base_lr)
            for group in opt.param_groups:
                group["lr"] = lr
            x = x.to(device, non_blocking=True)
            views = [(v - mean) / std for v in views_of(x, views_rng)]
            with amp:
                loss = model(views)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
        row = {"epoch": epoch + 1, "loss": f"{total / steps_per_epoch:.5f}", "lr": f"{lr:.6f}",
               "seconds": f"{time.perf_counter() - t0:.1f}", "knn_top1": ""}
        if cfg.monitor_every > 0 and ((epoch + 1) % cfg.monitor_every == 0 or epoch + 1 == cfg.epochs):
            row["knn_top1"] = f"{_monitor(model.backbone, cfg, req, device):.4f}"
        log.append(row)
        console.print(" ".join(f"{k}={v}" for k, v in row.items() if v != ""))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(row))
        writer.writeheader()
        writer.writerows(log)
        atomic_write_text(log_file, buf.getvalue())
        with atomic_open(ckpt) as fh:
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch}, fh)
    return export_backbone(model.backbone, cfg, run_dir)


def export_backbone(backbone: torch.nn.Module, cfg: PretrainConfig, run_dir: Path) -> Path:
    """Writes ``backbone.safetensors`` and a zoo ``card.yaml`` for it into ``run_dir``."""
    path = run_dir / "backbone.safetensors"
    atomic_write_bytes(path, save({k: v.detach().cpu().contiguous() for k, v in backbone.state_dict().items()}))
    card = {
        "id": f"{cfg.data.name}-{cfg.method}-{cfg.arch.replace('/', '-')}".lower(),
        "arch": cfg.arch, "method": cfg.method, "pretrain_data": cfg.data.name,
        "paper": "see the method's docstring", "license": "MIT",
        "source": {"path": path.name, "sha256": sha256_file(path)},
        "mean": list(cfg.mean), "std": list(cfg.std), "input_size": cfg.input_size, "crop_pct": 1.0,
    }
    atomic_write_text(run_dir / "card.yaml", yaml.safe_dump(card, sort_keys=False))
    return path
