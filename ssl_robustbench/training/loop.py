"""The one SSL training loop for every method: batched on-device views (``ViewGenerator``), AMP on CUDA, gradient
accumulation, SGD/AdamW/LARS with warmup-cosine, momentum targets updated once here, k-NN monitor, CSV and
TensorBoard logs, exact resume, and DDP under ``torchrun`` (NCCL on GPU, gloo on CPU).

Every random draw of epoch ``e`` (shuffling, augmentation) comes from generators seeded by ``(seed, e, rank)``, so
a run resumed from its end-of-epoch checkpoint continues exactly as if it had never stopped. ``run.batch_size``
is the global batch: each of N ranks takes batch / N images per step.
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
from torch.utils.data import DistributedSampler

from ssl_robustbench import distributed as ddp
from ssl_robustbench.backbones import build_backbone
from ssl_robustbench.backbones.dual_bn import has_dual_bn
from ssl_robustbench.config import build
from ssl_robustbench.data import DataRequest, ImageLoader, build_dataset, eval_loader
from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import atomic_open, atomic_write_bytes, atomic_write_text, sha256_file
from ssl_robustbench.methods import METHODS
from ssl_robustbench.methods.base import ema_update
from ssl_robustbench.preprocess import Preprocess
from ssl_robustbench.probes.features import extract, knn_accuracy
from ssl_robustbench.progress import console, track
from ssl_robustbench.runinfo import resolve_device, seed_everything, start_run
from ssl_robustbench.training.config import PretrainConfig
from ssl_robustbench.training.optim import build_optimizer
from ssl_robustbench.training.robust_monitor import exported_view, plot_robustness, robust_accuracy
from ssl_robustbench.training.schedule import warmup_cosine
from ssl_robustbench.transforms.views import ViewGenerator, preset
from ssl_robustbench.zoo.download import cache_root


def _monitor(method: torch.nn.Module, cfg: PretrainConfig, req: DataRequest, device: torch.device) -> float:
    """k-NN top-1 of the encoder that would be exported: train split as memory bank, the held-out split as
    queries."""
    backbone, model, branch = exported_view(method, cfg, device)
    banks = []
    with branch:
        for split, limit in ((cfg.data.train_split, cfg.data.train_limit), (cfg.monitor_split, cfg.data.eval_limit)):
            ds = build_dataset(cfg.data.name, dataclasses.replace(req, split=split), limit=limit)
            banks.append(extract(model.features, eval_loader(ds, cfg.run), device=device,
                                 description=f"k-NN {split}"))
    backbone.train()
    (xtr, ytr), (xte, yte) = banks
    return knn_accuracy(xtr, ytr, xte, yte, k=cfg.knn_k)


class _Logs:
    """log.csv (rewritten atomically each epoch) and, where ``tensorboard`` is installed, TensorBoard scalars."""

    def __init__(self, run_dir: Path, rows: list[dict]) -> None:
        self.path, self.rows = run_dir / "log.csv", rows
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tensorboard"))
        except ImportError:
            self.tb = None

    def add(self, row: dict) -> None:
        self.rows.append(row)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(row))
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, buf.getvalue())
        if self.tb is not None:
            for key in ("loss", "lr", "knn_top1", "momentum"):
                if row.get(key) not in (None, ""):
                    self.tb.add_scalar(f"pretrain/{key}", float(row[key]), int(row["epoch"]))
            self.tb.flush()


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
    if cfg.accumulate < 1:
        raise UserError("accumulate must be ≥ 1")
    device = ddp.setup(resolve_device(cfg.run.device))
    rank, world, main = ddp.rank(), ddp.world_size(), ddp.rank() == 0
    if cfg.run.batch_size % (world * cfg.accumulate):
        raise UserError(f"batch size {cfg.run.batch_size} is not divisible by {world} ranks × {cfg.accumulate} "
                        "accumulation steps")
    if main:
        start_run(run_dir, cfg, device, env_extra={"world_size": world})
    ddp.barrier()
    seed_everything(cfg.run.seed)
    cache = Path(cfg.run.cache_dir) if cfg.run.cache_dir else cache_root()
    req = DataRequest(split=cfg.data.train_split, preprocess=Preprocess(input_size=cfg.input_size, crop_pct=1.0),
                      root=Path(cfg.data.root) if cfg.data.root else None, download=cfg.data.download,
                      cache_dir=cache)
    train_ds = build_dataset(cfg.data.name, req, limit=cfg.data.train_limit)
    model = method_cls(build_backbone(cfg.arch), method_cfg).to(device)
    model.prepare(train_ds, cfg, device)  # e.g. AdvCL's pseudo-label clusters of the training set
    model.warmup = cfg.warmup_epochs / max(cfg.epochs, 1)  # epochs 0: the initialization is exported as is
    if cfg.sync_bn and world > 1:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    micro = cfg.run.batch_size // (world * cfg.accumulate)  # images per rank per forward pass
    steps_per_epoch = len(train_ds) // cfg.run.batch_size
    if steps_per_epoch == 0:
        raise UserError(f"batch size {cfg.run.batch_size} is larger than the training set ({len(train_ds)} images)")
    base_lr = cfg.lr * cfg.run.batch_size / 256
    opt = build_optimizer(cfg.optimizer, model, lr=base_lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    mean = torch.tensor(cfg.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(cfg.std, device=device).view(1, -1, 1, 1)

    def view_generator(specs: list) -> ViewGenerator:
        return ViewGenerator(specs, default_size=cfg.view_size or cfg.input_size, color_strength=cfg.color_strength,
                             extra=tuple(preset(name, cfg.method) for name in cfg.aug))

    views_of = view_generator(list(cfg.views) or list(method_cls.default_views))
    ckpt = run_dir / "checkpoint.pt"
    start, rows = 0, []
    if ckpt.is_file():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start = int(state["epoch"]) + 1
        rows = [r for r in csv.DictReader(io.StringIO((run_dir / "log.csv").read_text())) if int(r["epoch"]) <= start]
        if main:
            console.print(f"resuming {run_dir} after epoch {start}")
    logs = _Logs(run_dir, rows) if main else None
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    total_steps = cfg.epochs * steps_per_epoch
    for epoch in range(start, cfg.epochs):
        shuffle = torch.Generator().manual_seed(cfg.run.seed * 100_003 + epoch)
        views_rng = torch.Generator(device=device).manual_seed((cfg.run.seed * 100_019 + epoch) * 1_009 + rank)
        sampler = (DistributedSampler(train_ds, num_replicas=world, rank=rank, shuffle=True,
                                      seed=cfg.run.seed * 100_003 + epoch, drop_last=True) if world > 1 else None)
        loader = ImageLoader(train_ds, batch_size=micro, shuffle=sampler is None, sampler=sampler, drop_last=True,
                            generator=shuffle if sampler is None else None, num_workers=cfg.run.workers)
        batches = iter(loader)
        model.epoch, model.epochs = epoch, cfg.epochs
        annealed = model.views_at(epoch, cfg.epochs, cfg.view_size or cfg.input_size)
        if annealed is not None:  # e.g. DynACL: the augmentation strength of this epoch
            views_of = view_generator(annealed)
        net.train()
        total, t0 = 0.0, time.perf_counter()
        for i in track(range(steps_per_epoch), total=steps_per_epoch, description=f"epoch {epoch + 1}/{cfg.epochs}"):
            step = epoch * steps_per_epoch + i
            lr = warmup_cosine(step, total=total_steps, warmup=cfg.warmup_epochs * steps_per_epoch, base=base_lr,
                               final=cfg.final_lr)
            model.progress = step / total_steps
            decay = model.weight_decay_at(model.progress, cfg.weight_decay)
            for group in opt.param_groups:
                group["lr"] = lr
                if group.get("decay", True):  # biases and norms stay undecayed
                    group["weight_decay"] = decay
            opt.zero_grad(set_to_none=True)
            for k in range(cfg.accumulate):
                x = next(batches)[0].to(device, non_blocking=True)
                views = [(v - mean) / std for v in views_of(x, views_rng)]
                sync = net.no_sync() if world > 1 and k < cfg.accumulate - 1 else contextlib.nullcontext()
                with sync, amp:
                    loss = net(views)["loss"] / cfg.accumulate
                with sync:
                    loss.backward()
                total += float(loss.detach())
            model.before_optimizer_step()
            opt.step()
            momentum = model.momentum_at((step + 1) / total_steps)
            for online, target in model.ema_pairs():
                ema_update(target, online, momentum, buffers=model.ema_buffers)
        row = {"epoch": epoch + 1, "loss": f"{total / steps_per_epoch:.5f}", "lr": f"{lr:.6f}",
               "global_batch": cfg.run.batch_size, "world_size": world,
               "momentum": f"{momentum:.6f}" if model.ema_pairs() else "",
               "seconds": f"{time.perf_counter() - t0:.1f}", "knn_top1": ""}
        row |= model.epoch_stats()  # e.g. ASTrA's action distributions and reward
        if main:
            if cfg.monitor_every > 0 and ((epoch + 1) % cfg.monitor_every == 0 or epoch + 1 == cfg.epochs):
                row["knn_top1"] = f"{_monitor(model, cfg, req, device):.4f}"
            if cfg.robust_monitor_every > 0:  # the columns exist in every row, filled on measured epochs
                measured = (epoch + 1) % cfg.robust_monitor_every == 0 or epoch + 1 == cfg.epochs
                scores = robust_accuracy(model, cfg, req, device) if measured else {"sa": "", "ra": ""}
                row |= {k: f"{v:.4f}" if v != "" else "" for k, v in scores.items()}
            logs.add(row)
            model.plot_log(logs.path, run_dir)  # e.g. ASTrA's policy.png
            if cfg.robust_monitor_every > 0:
                plot_robustness(logs.path, run_dir / "robustness.png")
            console.print(" ".join(f"{k}={v}" for k, v in row.items() if v != ""))
            with atomic_open(ckpt) as fh:
                torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch}, fh)
        ddp.barrier()
    model.post_train(train_ds, cfg, device)  # e.g. DynACL++'s pseudo-label finetuning (not resumable)
    path = (export_backbone(model.exported_backbone(), cfg, run_dir, method=model.card_method,
                            normalization=model.export_normalization()) if main
            else run_dir / "backbone.safetensors")
    ddp.barrier()
    return path


def export_backbone(backbone: torch.nn.Module, cfg: PretrainConfig, run_dir: Path, *, method: str | None = None,
                    normalization: tuple[list[float], list[float]] | None = None) -> Path:
    """Writes ``backbone.safetensors`` and a zoo ``card.yaml`` for it into ``run_dir`` (a dual-BN backbone keeps
    both branches; its card evaluates the ``pgd`` one, as for released ACL checkpoints)."""
    method = method or cfg.method
    path = run_dir / "backbone.safetensors"
    atomic_write_bytes(path, save({k: v.detach().cpu().contiguous() for k, v in backbone.state_dict().items()}))
    suffix = "".join(f"-{a}" for a in cfg.aug)
    card = {
        "id": f"{cfg.data.name}-{method.replace('+', '-')}{suffix}-{cfg.arch.replace('/', '-')}".lower(),
        "arch": cfg.arch, "method": method, "pretrain_data": cfg.data.name,
        "paper": "see the method's docstring", "license": "MIT",
        "source": {"path": path.name, "sha256": sha256_file(path)},
        "mean": list(normalization[0] if normalization else cfg.mean),
        "std": list(normalization[1] if normalization else cfg.std), "input_size": cfg.input_size, "crop_pct": 1.0,
        "interpolation": "bilinear",
    }
    if has_dual_bn(backbone):
        card["bn_branch"] = "pgd"
    if cfg.aug:
        card["notes"] = f"robust view generation: {', '.join(cfg.aug)} (transforms/views.py presets)"
    atomic_write_text(run_dir / "card.yaml", yaml.safe_dump(card, sort_keys=False))
    return path
