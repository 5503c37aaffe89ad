"""Finetuning protocols of adversarial SSL evaluation: SLF, ALF and AFF (as in ACL, Jiang et al. NeurIPS 2020;
DynACL, Luo et al. ICLR 2023; ASTrA, Chhipa et al. ICLR 2025).

- SLF: frozen encoder, linear head trained on clean images.
- ALF: frozen encoder, linear head trained on PGD adversarial examples of the current encoder+head.
- AFF: encoder and head trained end to end with TRADES (Zhang et al., ICML 2019). A dual-BN checkpoint is
  finetuned as the released ``test_AFF.py`` / ``utils_dyn.trades_loss_dual`` of DynACL and ASTrA do: clean images
  through the ``normal`` branch, adversarial ones through ``pgd``, the KL ascent starting at x, scored on ``pgd``. A
  single-BN model gets TRADES' own form (one BatchNorm; the ascent starts at x + 0.001·N(0, 1), since at x the
  gradient of KL(f(x) ‖ f(x')) is zero when both sides go through the same network).

As in the released scripts, the head starts at zero and training crops are RandomCrop(size, padding 4) + flip
(AFF at 96 px, STL-10: no padding). Recipes live in ``benchmarks/adversarial/<protocol>.yaml``; ``epochs`` can be
overridden (tests scale it down).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ssl_robustbench.attacks.base import ThreatModel
from ssl_robustbench.attacks.pgd import pgd
from ssl_robustbench.backbones import ImageClassifier
from ssl_robustbench.backbones.dual_bn import bn_branch, collapse_dual_bn, convert_dual_bn, load_branch
from ssl_robustbench.config import build, load_yaml
from ssl_robustbench.data import ImageLoader
from ssl_robustbench.errors import UserError
from ssl_robustbench.progress import track
from ssl_robustbench.resources import project_dir
from ssl_robustbench.transforms.augment import random_crop_flip

PROTOCOLS = ("slf", "alf", "aff")


@dataclasses.dataclass(frozen=True)
class FinetuneRecipe:
    """One protocol's recipe (see the YAML files for the published values)."""

    protocol: str
    epochs: int = 25
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 2e-4
    milestones: tuple[int, ...] = (10, 20)
    gamma: float = 0.1
    batch_size: int = 512
    crop_pad: int = 4
    unpadded_sizes: tuple[int, ...] = ()  # input sizes cropped without padding (AFF on STL-10's 96 px)
    flip: bool = True
    attack_steps: int = 10
    attack_step_size: float = 2 / 255
    trades_beta: float = 6.0


def recipe_dir() -> Path:
    """``benchmarks/adversarial`` of the project (checkout or installed)."""
    return project_dir("benchmarks") / "adversarial"


def load_recipe(protocol: str, *, epochs: int | None = None, scale: int = 1) -> FinetuneRecipe:
    """Reads ``<protocol>.yaml``. ``scale`` k stretches it k-fold — epochs and lr milestones × k: k × the SGD steps
    on the same schedule shape (a small training set: 5,000 images give the CIFAR recipe 10 steps an epoch, and
    k = 10 gives it CIFAR-10's ~2,500); then ``epochs`` overrides the epochs (a scaled-down run)."""
    if protocol not in PROTOCOLS:
        raise UserError(f"protocol must be one of {', '.join(PROTOCOLS)} or probe, not {protocol!r}")
    recipe = build(FinetuneRecipe, load_yaml(recipe_dir() / f"{protocol}.yaml"), where=f"{protocol}.")
    if scale != 1:
        recipe = dataclasses.replace(recipe, epochs=recipe.epochs * scale,
                                     milestones=tuple(m * scale for m in recipe.milestones))
    return dataclasses.replace(recipe, epochs=epochs) if epochs is not None else recipe


class _Branches:
    """Runs a classifier through its clean / adversarial BatchNorm branch (dual BN), or through its one BN."""

    def __init__(self, model: ImageClassifier, dual: bool) -> None:
        self.model, self.dual = model, dual

    def clean(self, x: torch.Tensor) -> torch.Tensor:
        with bn_branch(self.model.backbone, "normal") if self.dual else contextlib.nullcontext():
            return self.model(x)

    def adversarial(self, x: torch.Tensor) -> torch.Tensor:
        with bn_branch(self.model.backbone, "pgd") if self.dual else contextlib.nullcontext():
            return self.model(x)


def _trades_adversary(net: _Branches, x: torch.Tensor, threat: ThreatModel, recipe: FinetuneRecipe,
                      g: torch.Generator) -> torch.Tensor:
    """TRADES' inner maximisation: ascend KL(f_normal(x) ‖ f_pgd(x')) (model in eval mode), from x with dual BN,
    from x + 0.001·N(0, 1) with one BN."""
    with torch.no_grad():
        target = F.softmax(net.clean(x), dim=1)
    adv = x.clone() if net.dual else (x + 0.001 * torch.randn(x.shape, generator=g, device=x.device)).clamp(0, 1)
    for _ in range(recipe.attack_steps):
        adv.requires_grad_(True)
        kl = F.kl_div(F.log_softmax(net.adversarial(adv), dim=1), target, reduction="sum")
        (grad,) = torch.autograd.grad(kl, adv)
        with torch.no_grad():
            adv = threat.project(adv + recipe.attack_step_size * grad.sign(), x)
    return adv.detach()


def finetune(
    model: ImageClassifier, train: Dataset, *, recipe: FinetuneRecipe, threat: ThreatModel, num_classes: int,
    device: torch.device, seed: int = 0, dual_bn: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
    keep_head: bool = False,
) -> dict[str, Any]:
    """Trains ``model.head`` (SLF, ALF) or the whole model (AFF) in place; returns a record of the run. AFF with
    ``dual_bn`` (the checkpoint's two branches, ``LoadedModel.dual_bn``) finetunes both and keeps ``pgd``. The head
    starts at zero unless ``keep_head`` (DynACL++'s AFT starts from its linear-probing head)."""
    torch.manual_seed(seed)
    if not (keep_head and isinstance(model.head, nn.Linear)):
        model.head = nn.Linear(model.backbone.num_features, num_classes).to(device)
        nn.init.zeros_(model.head.weight)
        nn.init.zeros_(model.head.bias)
    full = recipe.protocol == "aff"
    dual = full and dual_bn is not None
    if dual:
        convert_dual_bn(model.backbone)
        for branch, state in dual_bn.items():
            load_branch(model.backbone, branch, state)
        model.to(device)
    net = _Branches(model, dual)
    model.backbone.requires_grad_(full)
    params = list(model.parameters()) if full else list(model.head.parameters())
    opt = torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(recipe.milestones), gamma=recipe.gamma)
    shuffle = torch.Generator().manual_seed(seed)
    g = torch.Generator(device=device).manual_seed(seed)
    loader = ImageLoader(train, batch_size=recipe.batch_size, shuffle=True, generator=shuffle)
    losses = []
    for epoch in range(recipe.epochs):
        total = 0.0
        label = f"{recipe.protocol} epoch {epoch + 1}/{recipe.epochs}"
        for x, y in track(loader, total=len(loader), description=label):
            x, y = x.to(device), torch.as_tensor(y).to(device)
            pad = 0 if x.shape[-1] in recipe.unpadded_sizes else recipe.crop_pad
            x = random_crop_flip(x, pad=pad, flip=recipe.flip, g=g)
            model.eval()  # frozen encoders keep their BatchNorm statistics; attacks run in eval mode
            if recipe.protocol == "alf":
                x = pgd(model, x, y, threat=threat, steps=recipe.attack_steps, step_size=recipe.attack_step_size,
                        seed=int(torch.randint(0, 2**31, (1,), generator=shuffle)))
            if full:
                adv = _trades_adversary(net, x, threat, recipe, g)
                model.train()
                logits = net.clean(x)
                kl = F.kl_div(F.log_softmax(net.adversarial(adv), dim=1), F.softmax(logits, dim=1),
                              reduction="batchmean")
                loss = F.cross_entropy(logits, y) + recipe.trades_beta * kl
            else:
                with torch.no_grad():
                    feats = model.features(x)
                loss = F.cross_entropy(model.head(feats), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
        sched.step()
        losses.append(total / max(1, len(loader)))
    if dual:
        collapse_dual_bn(model.backbone, "pgd")  # scored through the adversarial branch, as test_AFF.py
    model.eval()
    model.backbone.requires_grad_(False)
    return {"recipe": dataclasses.asdict(recipe), "epoch_losses": losses, "bn": "dual" if dual else "single"}
