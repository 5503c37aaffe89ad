"""DynACL++ (Luo et al., "Rethinking the Effect of Data Augmentation in Adversarial Contrastive Learning", ICLR
2023): DynACL pretraining, then the authors' post-processing, as ``assign_label.py`` and ``LPAFT.py`` with
``utils.trades_loss`` of ``PKU-ML/DYNACL``:

1. pseudo labels: k-means (10 clusters) on the ``normal``-branch features of the exported key encoder over the
   unaugmented training set;
2. LP: a linear head (default init) on the frozen ``pgd`` branch, trained on the pseudo labels — 10 epochs, SGD
   lr 0.01, momentum 0.9, wd 1e-4, RandomCrop(padding 4) + flip, batch 512;
3. AFT: the ``pgd``-branch encoder and that head finetuned end to end with TRADES (β 6; 10 ascent steps of 2/255
   in ε 8/255) on the pseudo labels — 25 epochs, SGD lr 0.1, momentum 0.9, wd 1e-4, lr × 0.1 at epochs 10 and 20.

The exported encoder is the finetuned single-BN one (``LPAFT.py`` writes the adversarial route only). Departure:
the ascent starts at x + 0.001·N(0, 1) (``benchmarks/adversarial_finetune.py``'s single-BN TRADES); the released
``trades_loss`` starts at x exactly, where the KL gradient is zero up to rounding. The post-processing runs once
after the last epoch and is not resumable on its own (a resumed finished run repeats it, with the same result).
"""

from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn
from torch.utils.data import Dataset

from ssl_robustbench.backbones.dual_bn import bn_branch, collapse_dual_bn
from ssl_robustbench.config import bounded
from ssl_robustbench.methods.acl import DynACL, DynACLConfig
from ssl_robustbench.methods.base import METHODS


@dataclasses.dataclass(frozen=True)
class DynACLPPConfig(DynACLConfig):
    """DynACL's settings plus the post-processing's: pseudo classes (10), LP and AFT epochs / learning rates,
    their weight decay and batch, and AFT's TRADES attack (``assign_label.py``, ``LPAFT.py``)."""

    pseudo_classes: int = bounded(10, low=2)
    lp_epochs: int = bounded(10, low=0)
    lp_lr: float = bounded(0.01, low=0.0, low_open=True)
    aft_epochs: int = bounded(25, low=0)
    aft_lr: float = bounded(0.1, low=0.0, low_open=True)
    post_weight_decay: float = bounded(1e-4, low=0.0)
    post_batch_size: int = bounded(512, low=1)
    aft_eps: float = bounded(8 / 255, low=0.0, low_open=True)
    aft_steps: int = bounded(10, low=1)
    aft_step_size: float = bounded(2 / 255, low=0.0, low_open=True)
    trades_beta: float = bounded(6.0, low=0.0)


class _PseudoLabelled(Dataset):
    """The training images with their pseudo labels."""

    def __init__(self, images: Dataset, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.images[i][0], int(self.labels[i])


@METHODS.register("dynacl++")
class DynACLPP(DynACL):
    Config = DynACLPPConfig
    paper = 'Luo et al., "Rethinking the Effect of Data Augmentation in Adversarial Contrastive Learning", ICLR ' \
            '2023 (DynACL++: pseudo-label LP + AFT)'

    def __init__(self, backbone: nn.Module, cfg: DynACLPPConfig) -> None:
        super().__init__(backbone, cfg)
        self._finetuned: list[nn.Module] = []  # not a submodule: the training checkpoint stays DynACL's

    def pseudo_labels(self, train_ds: Dataset, cfg, device: torch.device) -> torch.Tensor:
        """k-means cluster of each training image's ``normal``-branch key-encoder feature."""
        from ssl_robustbench.backbones import ImageClassifier
        from ssl_robustbench.data import eval_loader
        from ssl_robustbench.probes.clustering import assign, kmeans
        from ssl_robustbench.probes.features import extract

        encoder = ImageClassifier(self.key_backbone, mean=cfg.mean, std=cfg.std).to(device).eval()
        with bn_branch(encoder.backbone, "normal"):
            feats, _ = extract(encoder.features, eval_loader(train_ds, cfg.run), device=device,
                               description="dynacl++ pseudo labels")
        feats = feats.to(device)
        return assign(feats, kmeans(feats, self.cfg.pseudo_classes, seed=cfg.run.seed)).cpu()

    def post_train(self, train_ds: Dataset, cfg, device: torch.device) -> None:
        """Pseudo labels, then LP and TRADES AFT of the ``pgd`` branch on them."""
        from ssl_robustbench.attacks.base import ThreatModel
        from ssl_robustbench.backbones import ImageClassifier
        from ssl_robustbench.benchmarks.adversarial_finetune import FinetuneRecipe, finetune

        c = self.cfg
        data = _PseudoLabelled(train_ds, self.pseudo_labels(train_ds, cfg, device))
        backbone = collapse_dual_bn(copy.deepcopy(self.key_backbone), "pgd").requires_grad_(True)
        model = ImageClassifier(backbone, mean=cfg.mean, std=cfg.std).to(device)
        model.head = nn.Linear(backbone.num_features, c.pseudo_classes).to(device)  # LPAFT's default init
        common = {"momentum": 0.9, "weight_decay": c.post_weight_decay, "batch_size": c.post_batch_size,
                  "crop_pad": 4, "flip": True}
        threat = ThreatModel("Linf", c.aft_eps)
        stages = (FinetuneRecipe(protocol="slf", epochs=c.lp_epochs, lr=c.lp_lr, milestones=(), **common),
                  FinetuneRecipe(protocol="aff", epochs=c.aft_epochs, lr=c.aft_lr, milestones=(10, 20),
                                 attack_steps=c.aft_steps, attack_step_size=c.aft_step_size,
                                 trades_beta=c.trades_beta, **common))
        for recipe in stages:
            finetune(model, data, recipe=recipe, threat=threat, num_classes=c.pseudo_classes, device=device,
                     seed=cfg.run.seed, keep_head=True)
        self._finetuned = [model.backbone]

    def exported_backbone(self) -> nn.Module:
        """The LP-AFT-finetuned single-BN encoder after ``post_train``; DynACL's key encoder before."""
        return self._finetuned[0] if self._finetuned else super().exported_backbone()
