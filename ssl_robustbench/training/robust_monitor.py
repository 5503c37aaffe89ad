"""Robust overfitting, visible during pretraining (Rice et al., "Overfitting in adversarially robust deep learning",
ICML 2020): every ``robust_monitor_every`` epochs an SLF-lite evaluation of the encoder that would be exported —
a linear probe (L-BFGS) on the frozen features of a fixed training subset, then SA and PGD-20 RA (L∞, the
benchmark's default ε for the input size, step ε/4) on a fixed held-out subset — logged as ``sa`` / ``ra`` in
``log.csv`` and drawn per epoch in ``robustness.png``, so the gap between the best and the last epoch shows.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
from pathlib import Path

import torch

from ssl_robustbench.attacks.base import ThreatModel, default_eps
from ssl_robustbench.attacks.pgd import pgd
from ssl_robustbench.backbones import ImageClassifier
from ssl_robustbench.backbones.dual_bn import bn_branch, has_dual_bn
from ssl_robustbench.config import ProbeConfig
from ssl_robustbench.data import DataRequest, build_dataset, eval_loader, fixed_subset, subset
from ssl_robustbench.probes.features import extract
from ssl_robustbench.probes.linear import fit_linear_probe


def exported_view(model: torch.nn.Module, cfg, device: torch.device
                  ) -> tuple[torch.nn.Module, ImageClassifier, contextlib.AbstractContextManager]:
    """The encoder that ``pretrain`` exports, as the zoo card will evaluate it, on ``device``: its normalization,
    and the ``pgd`` BatchNorm branch of a dual-BN encoder."""
    backbone = model.exported_backbone()
    mean, std = model.export_normalization() or (cfg.mean, cfg.std)
    branch = bn_branch(backbone, "pgd") if has_dual_bn(backbone) else contextlib.nullcontext()
    return backbone, ImageClassifier(backbone, mean=mean, std=std).to(device).eval(), branch


def robust_accuracy(model: torch.nn.Module, cfg, req: DataRequest, device: torch.device) -> dict[str, float]:
    """SA and PGD-20 RA (fractions) of the exported encoder under an SLF-lite probe (see the module docstring)."""
    backbone, classifier, branch = exported_view(model, cfg, device)
    train = build_dataset(cfg.data.name, dataclasses.replace(req, split=cfg.data.train_split))
    train = subset(train, sorted(fixed_subset(len(train), min(len(train), cfg.robust_monitor_train))))
    held = build_dataset(cfg.data.name, dataclasses.replace(req, split=cfg.monitor_split))
    items = [held[i] for i in fixed_subset(len(held), min(len(held), cfg.robust_monitor_n))]
    x = torch.stack([image for image, _ in items]).to(device)
    y = torch.tensor([int(label) for _, label in items], device=device)
    threat = ThreatModel("Linf", default_eps(cfg.input_size, "Linf"))
    try:
        with branch:
            feats, labels = extract(classifier.features, eval_loader(train, cfg.run), device=device,
                                    description="robust monitor features")
            probe = fit_linear_probe(feats, labels, num_classes=len(train.classes), cfg=ProbeConfig(), device=device)
            classifier.head = probe.head.to(device)
            with torch.no_grad():
                sa = (classifier(x).argmax(1) == y).float().mean().item()
            adv = pgd(classifier, x, y, threat=threat, steps=20, seed=0)
            with torch.no_grad():
                ra = (classifier(adv).argmax(1) == y).float().mean().item()
    finally:
        backbone.train()
    return {"sa": sa, "ra": ra}


def plot_robustness(log_csv: Path, out: Path) -> Path | None:
    """SA and RA (%) per epoch from ``log.csv``, best-RA epoch marked; None when no epoch was measured."""
    rows = [r for r in csv.DictReader(log_csv.open(encoding="utf-8")) if r.get("ra")]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [int(r["epoch"]) for r in rows]
    sa, ra = ([100 * float(r[k]) for r in rows] for k in ("sa", "ra"))
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(epochs, sa, marker="o", label="SA (clean)")
    ax.plot(epochs, ra, marker="s", label="RA (PGD-20)")
    best = max(range(len(ra)), key=ra.__getitem__)
    ax.axvline(epochs[best], color="#999", ls="--", lw=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%), SLF-lite")
    # in the title, where no curve runs (an annotation inside the axes sat on the RA curve near 0 %)
    ax.set_title(f"robust overfitting monitor: best RA {ra[best]:.1f} % (epoch {epochs[best]}), last {ra[-1]:.1f} %",
                 fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
