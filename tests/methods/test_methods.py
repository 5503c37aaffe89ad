"""The eight SSL methods in the one training loop: each learns, momentum targets follow the schedule, resume is
exact with queues/teachers/centres, a 2-rank gloo torchrun run matches the global batch, checkpoints evaluate."""

from __future__ import annotations

import csv
import math
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from ssl_robustbench.backbones import build_backbone
from ssl_robustbench.config import DataConfig, RunConfig
from ssl_robustbench.methods import METHODS
from ssl_robustbench.methods.base import ema_update
from ssl_robustbench.training.config import PretrainConfig
from ssl_robustbench.training.loop import pretrain
from ssl_robustbench.transforms.views import ViewGenerator
from ssl_robustbench.zoo import load_model, resolve_card

ALL = ["simclr", "mocov2", "mocov3", "simsiam", "byol", "dino", "barlowtwins", "vicreg", "swav"]
# DINO's centring pulls an untrained teacher's targets toward uniform and its teacher-temperature warm-up raises
# the loss, both by design; with them off the student must still fit the teacher. MoCo: a small queue.
ARGS = {"mocov2": {"queue_size": 256}, "mocov3": {"mlp_dim": 64, "dim": 32},
        "dino": {"center_momentum": 1.0, "teacher_warmup": 0.0}}


def test_every_method_is_registered():
    adversarial = ["acl", "dynacl", "dynacl++", "rocl", "deacl", "advcl"]  # Self-AT, ASTrA's plug-in targets
    assert sorted(METHODS.names()) == sorted([*ALL, *adversarial])


@pytest.mark.parametrize("name", ALL)
def test_each_method_learns_a_fixed_batch(name):
    torch.manual_seed(0)
    cls = METHODS.get(name)
    model = cls(build_backbone("tiny_resnet/8-16-16-32"), cls.Config(**ARGS.get(name, {})))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3) if name == "dino" else torch.optim.SGD(params, lr=0.05, momentum=0.9)
    views_of = ViewGenerator(list(cls.default_views), default_size=32, color_strength=0.5)
    x, losses = torch.rand(32, 3, 32, 32), []
    assert views_of.num_views == (6 if name in ("dino", "swav") else 2)
    for step in range(30):
        views = [(v - 0.5) / 0.25 for v in views_of(x, torch.Generator().manual_seed(step % 2))]
        model.progress = step / 30
        loss = model(views)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        for online, target in model.ema_pairs():
            ema_update(target, online, model.momentum_at(step / 30))
        losses.append(loss.item())
    # from step 4 on (MoCo's queue then holds real keys instead of its random initial ones)
    assert sum(losses[-3:]) / 3 < sum(losses[4:7]) / 3, losses


def test_momentum_update_and_schedule():
    online, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = target.weight.detach().clone()
    ema_update(target, online, 0.9)
    assert torch.allclose(target.weight, 0.9 * before + 0.1 * online.weight.detach())
    byol = METHODS.get("byol")(build_backbone("tiny_resnet/8-16-16-32"), METHODS.get("byol").Config(momentum=0.99))
    assert byol.momentum_at(0.0) == pytest.approx(0.99) and byol.momentum_at(1.0) == pytest.approx(1.0)
    assert byol.momentum_at(0.5) == pytest.approx(1 - 0.01 * (math.cos(math.pi / 2) + 1) / 2)
    cls = METHODS.get("mocov2")
    moco = cls(build_backbone("tiny_resnet/8-16-16-32"), cls.Config(momentum=0.99))
    assert moco.momentum_at(0.7) == 0.99  # MoCo: constant


def small(cache_dir, method, epochs, **kw):
    return PretrainConfig(method=method, method_args=ARGS.get(method, {}), arch="tiny_resnet/8-16-16-16",
                          epochs=epochs, view_size=32, monitor_every=0, data=DataConfig(train_limit=64),
                          warmup_epochs=1, run=RunConfig(batch_size=32, cache_dir=str(cache_dir)), **kw)


@pytest.mark.parametrize("method", ["mocov2", "byol", "dino"])
def test_resume_with_queue_teacher_and_centre_is_exact(tmp_path, cache_dir, method, interrupted_pretrain):
    cfg = small(cache_dir, method, 2)
    straight = pretrain(cfg, tmp_path / "a")
    interrupted_pretrain(cfg, tmp_path / "b")  # dies while saving epoch 2
    resumed = pretrain(cfg, tmp_path / "b")
    a, b = load_file(str(straight)), load_file(str(resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)
    la = list(csv.DictReader((tmp_path / "a" / "log.csv").open()))
    lb = list(csv.DictReader((tmp_path / "b" / "log.csv").open()))
    assert la[1]["loss"] == lb[1]["loss"]  # the next step's loss after resuming is the uninterrupted one


def test_accumulation_lars_and_aug_checkpoint_evaluates(tmp_path, cache_dir):
    cfg = small(cache_dir, "simclr", 1, optimizer="lars", accumulate=2, aug=("mpd", "lcm"))
    path = pretrain(cfg, tmp_path / "run")
    log = list(csv.DictReader((tmp_path / "run" / "log.csv").open()))
    assert log[0]["global_batch"] == "32" and math.isfinite(float(log[0]["loss"]))
    assert any((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    card = resolve_card(str(tmp_path / "run" / "card.yaml"))
    assert card.method == "simclr" and card.id == "embedded-simclr-mpd-lcm-tiny_resnet-8-16-16-16"
    assert "mpd" in card.notes and "lcm" in card.notes
    assert load_model(card).report.missing == () and path.is_file()


@pytest.mark.skipif(shutil.which("torchrun") is None and not os.path.exists(
    os.path.join(os.path.dirname(sys.executable), "torchrun")), reason="torchrun not installed")
def test_two_rank_gloo_torchrun_matches_the_global_batch(tmp_path, cache_dir):
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    out = tmp_path / "ddp"
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "ssl_robustbench", "pretrain", "--method",
           "simclr", "--epochs", "2", "--batch-size", "32", "--device", "cpu", "--out", str(out),
           "--cache-dir", str(cache_dir), "--arch", "tiny_resnet/8-16-16-16", "--set", "data.train_limit=128",
           "--set", "view_size=32", "--set", "monitor_every=0", "--set", "warmup_epochs=1"]
    env = dict(os.environ, OMP_NUM_THREADS="1", SSL_ROBUSTBENCH_PROGRESS="0")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    log = list(csv.DictReader((out / "log.csv").open()))
    assert [r["epoch"] for r in log] == ["1", "2"]
    assert all(r["world_size"] == "2" and r["global_batch"] == "32" for r in log)
    assert load_model(resolve_card(str(out / "card.yaml"))).report.missing == ()


def test_every_recipe_builds_with_valid_method_args():
    from pathlib import Path

    from ssl_robustbench.config import build, load_yaml

    recipes = sorted(Path(__file__).resolve().parents[2].glob("benchmarks/pretrain/*.yaml"))
    assert len(recipes) >= 12
    for path in recipes:
        cfg = build(PretrainConfig, load_yaml(path))
        build(METHODS.get(cfg.method).Config, cfg.method_args)
    dino = build(PretrainConfig, load_yaml(recipes[0].parent / "imagenet-dino-mpd.yaml"))
    assert dino.aug == ("mpd",) and dino.views[1].count == 8 and dino.views[1].size == 96


def test_swav_queue_fills_then_joins_the_codes():
    cls = METHODS.get("swav")
    torch.manual_seed(0)
    model = cls(build_backbone("tiny_resnet/8-16-16-32"), cls.Config(queue_size=16)).eval()
    views_of = ViewGenerator(list(cls.default_views), default_size=32, color_strength=0.5)

    def views(seed):
        x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
        return [(v - 0.5) / 0.25 for v in views_of(x, torch.Generator().manual_seed(seed))]

    model.train()
    for seed in range(2):
        model(views(seed))
    assert int(model.queue_filled) == 16 and (model.queue != 0).all(dim=-1).all()
    model.eval()  # same weights and batch statistics; the only difference below is the queue
    with_queue = float(model(views(9))["loss"])
    model.queue_filled.zero_()
    without = float(model(views(9))["loss"])
    assert math.isfinite(with_queue) and with_queue != pytest.approx(without, rel=1e-4)


def test_dino_schedules_are_main_dino_py(tmp_path, cache_dir):
    """main_dino.py: weight decay 0.04 → 0.4 by a cosine (decayed group only), per-parameter gradient clip 3.0,
    the last layer frozen in the first epoch."""
    cls = METHODS.get("dino")
    model = cls(build_backbone("tiny_resnet/8-16-16-16"), cls.Config())
    assert model.weight_decay_at(0.0, 0.04) == pytest.approx(0.04)
    assert model.weight_decay_at(0.5, 0.04) == pytest.approx(0.22)
    assert model.weight_decay_at(1.0, 0.04) == pytest.approx(0.4)
    for p in model.parameters():
        p.grad = torch.full_like(p, 10.0)
    model.epoch = 0
    model.before_optimizer_step()
    assert all(p.grad is None for p in model.head.last.parameters())
    clipped = [p.grad.norm() for p in model.backbone.parameters()]
    assert max(clipped) <= 3.0 + 1e-4 and min(clipped) > 0
    model.epoch = 1
    for p in model.head.last.parameters():
        p.grad = torch.ones_like(p)
    model.before_optimizer_step()
    assert all(p.grad is not None for p in model.head.last.parameters() if p.requires_grad)
    cfg = small(cache_dir, "dino", 1, optimizer="adamw", weight_decay=0.04)
    pretrain(cfg, tmp_path / "run")
    groups = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["optimizer"]["param_groups"]
    steps = 64 // 32
    assert groups[0]["weight_decay"] == pytest.approx(model.weight_decay_at((steps - 1) / steps, 0.04))
    assert groups[1]["weight_decay"] == 0.0  # biases and norms


def test_mocov3_is_the_authors_builder():
    """moco/builder.py: 2τ·CE(q·kᵀ/τ) both ways with in-batch keys, τ 1.0 (ResNet) / 0.2 (ViT), projector 2 / 3
    layers ending in an affine-free BN, predictor 2 layers, a parameter-only EMA key encoder, frozen ViT patches."""
    cls = METHODS.get("mocov3")
    torch.manual_seed(0)
    model = cls(build_backbone("tiny_resnet/8-16-16-32"), cls.Config(mlp_dim=64, dim=16)).train()
    assert model.temperature == 1.0 and not model.ema_buffers
    assert [type(m).__name__ for m in model.projector] == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d"]
    assert model.projector[-1].affine is False and len(model.predictor) == 4
    assert model.momentum_at(0.0) == pytest.approx(0.99) and model.momentum_at(1.0) == pytest.approx(1.0)
    x1, x2 = torch.rand(8, 3, 32, 32), torch.rand(8, 3, 32, 32)
    loss = model([x1, x2])["loss"]
    q1, q2 = (model.predictor(model.projector(model.backbone(x))) for x in (x1, x2))
    with torch.no_grad():
        k1, k2 = (model.key_projector(model.key_backbone(x)) for x in (x1, x2))

    def ctr(q, k):  # written out: cosine logits over the batch's keys, τ = 1, times 2τ
        logits = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(k, dim=1).T
        return torch.nn.functional.cross_entropy(logits, torch.arange(8)) * 2

    assert torch.allclose(loss, ctr(q1, k2) + ctr(q2, k1), atol=1e-5)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
    losses = []
    for _ in range(20):
        loss = model([x1, x2])["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] - 0.5
    vit = cls(build_backbone("timm/vit_tiny_patch16_224"), cls.Config(mlp_dim=32, dim=8))
    assert vit.temperature == 0.2 and sum(isinstance(m, torch.nn.Linear) for m in vit.projector) == 3
    assert not any(p.requires_grad for p in vit.backbone.parameters() if p.ndim == 4)  # --stop-grad-conv1
