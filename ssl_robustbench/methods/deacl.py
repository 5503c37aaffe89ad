"""DeACL (Zhang et al., "Decoupled Adversarial Contrastive Learning for Self-supervised Adversarial Robustness",
ECCV 2022), stage 2, as the authors' ``solo/methods/mocov2_distillation_AT.py``,
``solo/methods/base_for_adversarial_training.py`` and ``bash_files/DeACL_cifar10_resnet18.sh``:

- stage 1 is any standard SSL checkpoint (``teacher``: a zoo id or card; the released script distils SimCLR);
- the student starts as a copy of the teacher (``student_scratch`` off); the teacher stays frozen in eval mode;
- no projector (``projector_ablation=remove``): losses on backbone features;
- the attack maximises −cos(student(x_adv), teacher(x)) from a random start in the ε ball (ε 8/255, 5 steps of
  2/255, student in eval mode);
- loss −cos(student(x), teacher(x)) − k·cos(student(x_adv), student(x)), k = ``trades_k`` = 2;
- one weak view: RandomCrop(size, padding 4) + flip, no colour augmentation.

Pixels are in [0, 1] (recipes set mean 0, std 1); student and teacher normalize them with the teacher card's mean
and std, which the exported card records. With ``--strategy astra`` ASTrA picks the per-sample budgets.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from ssl_robustbench.config import bounded
from ssl_robustbench.errors import UserError
from ssl_robustbench.methods.base import METHODS, frozen_copy
from ssl_robustbench.methods.self_at import SelfAT, SelfATConfig
from ssl_robustbench.transforms.views import ViewSpec


@dataclasses.dataclass(frozen=True)
class DeACLConfig(SelfATConfig):
    """The stage-1 ``teacher`` (zoo id or card path, required) and the weight ``trades_k`` (2) of the adversarial
    cosine term."""

    teacher: str = ""
    trades_k: float = bounded(2.0, low=0.0)


@METHODS.register("deacl")
class DeACL(SelfAT):
    Config = DeACLConfig
    paper = 'Zhang et al., "Decoupled Adversarial Contrastive Learning for Self-supervised Adversarial Robustness", ' \
            'ECCV 2022'
    default_views = (ViewSpec("global", 1, pad=4, jitter_p=0.0, gray_p=0.0),)
    frozen_networks = ("teacher",)  # in eval mode throughout (base_for_adversarial_training.py)

    def __init__(self, backbone: nn.Module, cfg: DeACLConfig) -> None:
        from ssl_robustbench.zoo import load_model, resolve_card

        if not cfg.teacher:
            raise UserError("deacl distils a stage-1 SSL checkpoint: set method_args.teacher to its zoo id or card "
                            "(e.g. --set method_args.teacher=embedded-simclr-tinyresnet)")
        teacher = load_model(resolve_card(cfg.teacher), quiet=True)
        try:
            backbone.load_state_dict(teacher.model.backbone.state_dict())  # the student starts as the teacher
        except RuntimeError:
            raise UserError(f"deacl: the teacher {cfg.teacher!r} ({teacher.card.arch}) does not fit the student's "
                            "arch; pretrain with --arch set to the teacher's") from None
        super().__init__(backbone, cfg)
        self.teacher = frozen_copy(teacher.model.backbone).eval()
        self.register_buffer("mean", teacher.model.mean.clone())
        self.register_buffer("std", teacher.model.std.clone())

    def student(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone((x - self.mean) / self.std)

    def targets(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.teacher((x - self.mean) / self.std)

    def attack_objective(self, x: torch.Tensor):
        """−Σ cos(student(x_adv), teacher(x)) (``generate_training_AE``)."""
        target = self.targets(x)
        return lambda e: -F.cosine_similarity(e, target, dim=1).sum()

    def embed_rows(self, z: torch.Tensor, rows: torch.Tensor, n: int) -> torch.Tensor:
        return self.student(z)

    def losses(self, x: torch.Tensor, adv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """−cos(student(x), teacher(x)) and −cos(student(x_adv), teacher(x))."""
        target = self.targets(x)
        return (-F.cosine_similarity(self.student(x), target).mean(),
                -F.cosine_similarity(self.student(adv), target).mean())

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        x = views[0]
        adv = self.adversarial_views(x)
        clean, attacked = self.student(torch.cat([x, adv])).chunk(2)
        loss = (-F.cosine_similarity(clean, self.targets(x)).mean()
                - self.cfg.trades_k * F.cosine_similarity(attacked, clean).mean())
        return {"loss": loss}

    def export_normalization(self) -> tuple[list[float], list[float]]:
        return self.mean.flatten().tolist(), self.std.flatten().tolist()
