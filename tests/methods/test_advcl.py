"""AdvCL's pieces against the authors' formulas: the high-frequency view (``fr_util.generate_high``), the
four-view SupCon loss (``losses.SupConLoss`` without labels), k-means pseudo labels, three BN branches."""

from __future__ import annotations

import math

import pytest
import torch
from click.testing import CliRunner
from pretrain_args import tiny_pretrain_args

from ssl_robustbench.errors import UserError
from ssl_robustbench.losses import multiview_contrastive, nt_xent
from ssl_robustbench.methods import METHODS
from ssl_robustbench.methods.advcl import high_frequency
from ssl_robustbench.probes.clustering import assign, kmeans

TEACHER = "embedded-simclr-tinyresnet"


def reference_high(images: torch.Tensor, r: float) -> torch.Tensor:
    """``generate_high`` as released: a radial mask built pixel by pixel, distance to (size/2, size/2) < r."""
    size = images.shape[-1]
    mask = torch.zeros(size, size)
    for i in range(size):
        for j in range(size):
            mask[i, j] = 1.0 if math.sqrt((i - size / 2) ** 2 + (j - size / 2) ** 2) < r else 0.0
    fd = torch.fft.fftshift(torch.fft.fftn(images, dim=(-2, -1)))  # all dims shifted, as the authors' call
    fd = torch.fft.ifftn(torch.fft.ifftshift(fd * (1 - mask)), dim=(-2, -1))
    return torch.real(fd)


def reference_supcon(features: torch.Tensor, t: float, base: float) -> torch.Tensor:
    """SupConLoss(features [B, V, D], contrast_mode 'all', no labels), row by row."""
    b, v, _ = features.shape
    z = torch.nn.functional.normalize(torch.cat(torch.unbind(features, 1)), dim=1)
    total = 0.0
    for a in range(b * v):
        logits = z[a] @ z.T / t
        others = [c for c in range(b * v) if c != a]
        denom = torch.logsumexp(logits[others], 0)
        positives = [c for c in others if c % b == a % b]
        total = total + sum(logits[c] - denom for c in positives) / len(positives)
    return -(t / base) * total / (b * v)


def test_high_frequency_view_is_the_released_filter():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 32, 32, generator=g)
    ours = high_frequency(x, 8)
    assert torch.allclose(ours, reference_high(x.reshape(9, 32, 32), 8).reshape(3, 3, 32, 32), atol=1e-5)
    assert ours.mean(dim=(-2, -1)).abs().max() < 1e-5  # the DC term is gone
    assert torch.allclose(high_frequency(ours, 8), ours, atol=1e-5)  # a projection
    checker = ((torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2).float().expand(1, 3, 32, 32)
    assert torch.allclose(high_frequency(checker - 0.5, 8), checker - 0.5, atol=1e-5)  # Nyquist passes


def test_multiview_contrastive_is_supcon_without_labels():
    g = torch.Generator().manual_seed(1)
    views = [torch.randn(5, 7, generator=g) for _ in range(4)]
    expected = reference_supcon(torch.stack(views, 1), 0.5, 0.07)
    assert torch.allclose(multiview_contrastive(views, temperature=0.5), expected, atol=1e-4)
    a, b = views[:2]  # two views and τ_base = τ: SimCLR's NT-Xent
    assert torch.allclose(multiview_contrastive([a, b], temperature=0.5, base_temperature=0.5),
                          nt_xent(a, b, temperature=0.5), atol=1e-5)


def test_kmeans_recovers_separated_clusters_and_rejects_bad_input():
    g = torch.Generator().manual_seed(2)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    truth = torch.arange(3).repeat_interleave(30)
    x = centres[truth] + 0.3 * torch.randn(90, 2, generator=g)
    labels = assign(x, kmeans(x, 3, seed=5))
    for c in range(3):  # each true cluster maps to exactly one label, and no two clusters share one
        assert labels[truth == c].unique().numel() == 1
    assert labels.unique().numel() == 3
    assert torch.equal(kmeans(x, 3, seed=5), kmeans(x, 3, seed=5))
    with pytest.raises(UserError, match="at least 4 points"):
        kmeans(x[:3], 4)
    with pytest.raises(UserError, match="finite"):
        kmeans(torch.full((5, 2), float("nan")), 2)


def test_advcl_recipe_constants_and_errors():
    cls = METHODS.get("advcl")
    cfg = cls.Config()
    assert (cfg.eps, cfg.steps, cfg.step_size, cfg.temperature) == (8 / 255, 5, 2 / 255, 0.5)
    assert (cfg.ce_weight, cfg.radius, cfg.base_temperature, cfg.clusters) == (0.2, 8.0, 0.07, (2, 10, 50, 100, 500))
    assert [(s.count, s.scale, s.pad) for s in cls.default_views] == [(2, (0.2, 1.0), None), (1, (0.2, 1.0), 4)]
    with pytest.raises(UserError, match="clusters"):
        cls.Config(clusters=(2, 0))
    with pytest.raises(UserError, match="ce_weight"):
        cls.Config(ce_weight=-1.0)
    from ssl_robustbench.backbones import build_backbone
    with pytest.raises(UserError, match="method_args.cluster_model"):
        cls(build_backbone("tiny_resnet/8-8-8-8"), cfg)


def test_advcl_pretrain_exports_the_pgd_branch_of_three(tmp_path):
    from safetensors.torch import load_file

    from ssl_robustbench.cli import main
    from ssl_robustbench.zoo import load_model, resolve_card

    run = tmp_path / "advcl"
    args = tiny_pretrain_args("advcl", run, f"method_args.cluster_model={TEACHER}", "method_args.clusters=[2,10]",
                              "input_size=32")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    state = load_file(str(run / "backbone.safetensors"))
    assert any(".bn_list.2." in k for k in state)  # normal, pgd and pgd_ce
    card = resolve_card(str(run / "card.yaml"))
    assert (card.method, card.bn_branch) == ("advcl", "pgd")
    loaded = load_model(card)
    assert loaded.report.missing == ()
    bn = next(k for k in state if k.endswith("bn_list.1.running_mean"))
    assert torch.equal(loaded.model.backbone.state_dict()[bn.replace(".bn_list.1", "")], state[bn])
    too_many = CliRunner().invoke(main, args + ["--set", "method_args.clusters=[100]", "--out", str(tmp_path / "b")])
    assert too_many.exit_code != 0 and "100 clusters need at least 100" in too_many.output
    sizes = CliRunner().invoke(main, args + ["--set", "view_size=24", "--out", str(tmp_path / "c")])
    assert sizes.exit_code != 0 and "set view_size to input_size" in sizes.output
