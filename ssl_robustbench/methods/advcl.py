"""AdvCL (Fan et al., "When Does Contrastive Learning Preserve Adversarial Robustness from Pretraining to
Finetuning?", NeurIPS 2021), as the authors' ``pretraining_advCL.py``, ``fr_util.py``, ``losses.py`` and
``models/resnet_cifar_multibn_ensembleFC.py``:

- views: two SimCLR views (RandomResizedCrop scale 0.2–1, flip, jitter 0.4/0.4/0.4/0.1 p 0.8, grayscale p 0.2)
  and the original image under RandomCrop(padding 4) + flip, whose high-frequency part (FFT, the disc of radius 8
  around the centre of the shifted spectrum removed) is a fourth view;
- three BatchNorm branches in the encoder: ``normal`` (clean views), ``pgd`` (the contrastive adversary),
  ``pgd_ce`` (the pseudo-label adversary); the projector Linear(c, c)-BN-ReLU-Linear(c, 128) has one BN;
- pseudo supervision: k-means labels with k = 2, 10, 50, 100, 500 on a pretrained encoder's features
  (``cluster_model``; the authors use ImageNet-pretrained SimCLR features, ClusterFit), one linear head each on
  the encoder's features;
- the attack (ε 8/255, 5 steps of 2/255, random start) perturbs the original image twice, x_cl and x_ce,
  maximising SupCon(x_cl, view 1, view 2, high-freq; τ 0.5, base τ 0.07) + 0.2 · Σ_k CE_sum(head_k(x_ce)) / 5;
- the loss is the same sum with mean cross-entropies; SGD lr 0.5 (batch 512), wd 1e-4, cosine, 1000 epochs.

Departures: the attack runs in eval mode (the frame's per-sample PGD; the authors attack in train mode), and
each view's pseudo labels are its nearest k-means centroid in the cluster model's features (the authors look
them up by image index, from features of the unaugmented image). With ``--strategy astra`` ASTrA picks each
adversary's budget and adds 0.5 · NT-Xent(view 1 ↔ x_cl).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from ssl_robustbench.backbones.dual_bn import bn_branch, convert_dual_bn
from ssl_robustbench.config import bounded
from ssl_robustbench.errors import UserError
from ssl_robustbench.losses import multiview_contrastive, nt_xent
from ssl_robustbench.methods.base import METHODS, frozen_copy
from ssl_robustbench.methods.self_at import SelfAT, SelfATConfig
from ssl_robustbench.probes.clustering import assign, kmeans
from ssl_robustbench.transforms.views import ViewSpec

BRANCHES = ("normal", "pgd", "pgd_ce")


def high_frequency(x: torch.Tensor, radius: float) -> torch.Tensor:
    """The image minus its low frequencies: the centred spectrum's disc of ``radius`` (distance from (H/2, W/2)
    in index units, strictly inside) is zeroed, then the real part of the inverse FFT (``fr_util.generate_high``)."""
    h, w = x.shape[-2:]
    i = torch.arange(h, device=x.device, dtype=torch.float64)[:, None]
    j = torch.arange(w, device=x.device, dtype=torch.float64)[None, :]
    keep = (((i - h / 2) ** 2 + (j - w / 2) ** 2).sqrt() >= radius).to(x.dtype)
    spectrum = torch.fft.fftshift(torch.fft.fftn(x, dim=(-2, -1)), dim=(-2, -1)) * keep
    return torch.fft.ifftn(torch.fft.ifftshift(spectrum, dim=(-2, -1)), dim=(-2, -1)).real.to(x.dtype)


@dataclasses.dataclass(frozen=True)
class AdvCLConfig(SelfATConfig):
    """The ``cluster_model`` (zoo id or card, required) whose features give the pseudo labels, the cluster counts,
    the CE weight 0.2 and the high-frequency radius 8 (``pretraining_advCL.py``)."""

    cluster_model: str = ""
    clusters: tuple[int, ...] = (2, 10, 50, 100, 500)
    ce_weight: float = bounded(0.2, low=0.0)
    radius: float = bounded(8.0, low=0.0)
    base_temperature: float = bounded(0.07, low=0.0, low_open=True)
    kmeans_iters: int = bounded(50, low=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "clusters", tuple(self.clusters))  # YAML gives a list
        if not self.clusters or any(int(k) != k or k < 1 for k in self.clusters):
            raise UserError(f"method_args.clusters must be positive integers, not {self.clusters!r}")


@METHODS.register("advcl")
class AdvCL(SelfAT):
    Config = AdvCLConfig
    paper = 'Fan et al., "When Does Contrastive Learning Preserve Adversarial Robustness from Pretraining to ' \
            'Finetuning?", NeurIPS 2021'
    default_views = (ViewSpec("global", 2, scale=(0.2, 1.0), color_strength=0.5),
                     ViewSpec("global", 1, pad=4, jitter_p=0.0, gray_p=0.0))
    frozen_networks = ("clusterer",)

    def __init__(self, backbone: nn.Module, cfg: AdvCLConfig) -> None:
        from ssl_robustbench.zoo import load_model, resolve_card

        if not cfg.cluster_model:
            raise UserError("advcl's pseudo labels cluster a pretrained encoder's features: set "
                            "method_args.cluster_model to its zoo id or card "
                            "(e.g. --set method_args.cluster_model=embedded-simclr-tinyresnet)")
        clusterer = load_model(resolve_card(cfg.cluster_model), quiet=True).model
        super().__init__(convert_dual_bn(backbone, BRANCHES), cfg)
        width = backbone.num_features
        self.projector = nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True),
                                       nn.Linear(width, 128))
        self.heads = nn.ModuleList(nn.Linear(width, int(k)) for k in cfg.clusters)
        self.clusterer = frozen_copy(clusterer.backbone).eval()
        self.register_buffer("cluster_mean", clusterer.mean.clone())
        self.register_buffer("cluster_std", clusterer.std.clone())
        dim = clusterer.backbone.num_features
        for k in cfg.clusters:
            self.register_buffer(f"centroids_{k}", torch.zeros(int(k), dim))

    @torch.no_grad()
    def cluster_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.clusterer((x - self.cluster_mean) / self.cluster_std)

    def prepare(self, train_ds, cfg, device: torch.device) -> None:
        """k-means (seeded with the run's seed) on the cluster model's features of the training set."""
        from ssl_robustbench.data import eval_loader
        from ssl_robustbench.probes.features import extract

        feats, _ = extract(self.cluster_features, eval_loader(train_ds, cfg.run), device=device,
                           description="advcl clusters")
        for k in self.cfg.clusters:
            if len(feats) < k:
                raise UserError(f"advcl: {k} clusters need at least {k} training images, got {len(feats)}; "
                                "lower method_args.clusters")
            getattr(self, f"centroids_{k}").copy_(kmeans(feats.to(device), int(k), iters=self.cfg.kmeans_iters,
                                                         seed=cfg.run.seed))

    def pseudo_labels(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.cluster_features(x)
        return [assign(feats, getattr(self, f"centroids_{k}")) for k in self.cfg.clusters]

    def features(self, x: torch.Tensor, branch: str) -> torch.Tensor:
        with bn_branch(self.backbone, branch):
            return self.backbone(x)

    def project(self, x: torch.Tensor, branch: str) -> torch.Tensor:
        return self.projector(self.features(x, branch))

    def cross_entropy(self, logits: torch.Tensor, labels: list[torch.Tensor], reduction: str) -> torch.Tensor:
        """Σ_k CE(head_k, labels_k) / number of heads, from the heads' logits concatenated along dim 1."""
        parts = logits.split([int(k) for k in self.cfg.clusters], dim=1)
        return sum(F.cross_entropy(p, y, reduction=reduction) for p, y in zip(parts, labels, strict=True)) / len(parts)

    def attack_images(self, x: torch.Tensor) -> torch.Tensor:
        org = x.chunk(3)[2]
        return torch.cat([org, org])  # x_cl then x_ce, both from the original image

    def attack_objective(self, x: torch.Tensor):
        """SupCon(x_cl, view 1, view 2, high-freq) + w · Σ_k CE_sum(x_ce) / K, the clean views constant."""
        x1, x2, org = x.chunk(3)
        with torch.no_grad():
            fixed = [self.project(v, "normal") for v in (x1, x2, high_frequency(org, self.cfg.radius))]
            labels = self.pseudo_labels(org)
        n, c = len(org), self.cfg

        def objective(e: torch.Tensor) -> torch.Tensor:
            contrast = multiview_contrastive([e[:n, :128], *fixed], temperature=c.temperature,
                                             base_temperature=c.base_temperature)
            return contrast + c.ce_weight * self.cross_entropy(e[n:, 128:], labels, "sum")
        return objective

    def embed_rows(self, z: torch.Tensor, rows: torch.Tensor, n: int) -> torch.Tensor:
        """[projection (128) | head logits] per row: x_cl rows (the first half) fill the projection through
        ``pgd``, x_ce rows the logits through ``pgd_ce``; the other part stays zero."""
        out = z.new_zeros(len(z), 128 + sum(int(k) for k in self.cfg.clusters))
        cl = rows < n // 2
        if cl.any():
            out[cl, :128] = self.project(z[cl], "pgd")
        if (~cl).any():
            feats = self.features(z[~cl], "pgd_ce")
            out[~cl, 128:] = torch.cat([head(feats) for head in self.heads], dim=1)
        return out

    def losses(self, x: torch.Tensor, adv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """NT-Xent(view 1, view 2) and NT-Xent(x_cl, view 2) (ASTrA's reward)."""
        x1, x2, _ = x.chunk(3)
        second = self.project(x2, "normal")
        t = self.cfg.temperature
        return (nt_xent(self.project(x1, "normal"), second, temperature=t),
                nt_xent(self.project(adv.chunk(2)[0], "pgd"), second, temperature=t))

    def forward(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        c = self.cfg
        x1, x2, org = views[:3]
        if x1.shape != org.shape:
            raise UserError(f"advcl: the padded original view is {org.shape[-1]} px and the SimCLR views "
                            f"{x1.shape[-1]} px; set view_size to input_size (the released recipe: 32 for both)")
        x_cl, x_ce = self.adversarial_views(torch.cat([x1, x2, org])).chunk(2)
        z_cl = self.project(x_cl, "pgd")
        z1, z2, z_high = (self.project(v, "normal") for v in (x1, x2, high_frequency(org, c.radius)))
        loss = multiview_contrastive([z_cl, z1, z2, z_high], temperature=c.temperature,
                                     base_temperature=c.base_temperature)
        feats = self.features(x_ce, "pgd_ce")
        logits = torch.cat([head(feats) for head in self.heads], dim=1)
        loss = loss + c.ce_weight * self.cross_entropy(logits, self.pseudo_labels(org), "mean")
        if self.mixed_weight:
            loss = loss + self.mixed_weight * nt_xent(z1, z_cl, temperature=c.temperature)
        return {"loss": loss}
