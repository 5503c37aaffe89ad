"""Möbius warps (MPD) against the authors' ``mobius-mpd`` package for the same c, and MPD's random draw."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ssl_robustbench.errors import UserError
from ssl_robustbench.transforms.augment import AUGMENTATIONS
from ssl_robustbench.transforms.mobius import draw_c, mobius_warp

reference = pytest.importorskip("mobius_mpd.torch_transform", reason="mobius-mpd (dev extra) is not installed")


def _images(n=4, h=48, w=64):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("background", ["black", "padded"])
def test_warp_matches_the_authors_package(background):
    imgs = _images()
    c = [(0.25, 0.0), (-0.3, 0.0), (0.0, 0.18), (0.0, -0.22)]
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255
    ours = mobius_warp(x, torch.tensor([r for r, _ in c]), torch.tensor([i for _, i in c]), background=background)
    ours_u8 = (ours * 255).byte().permute(0, 2, 3, 1).numpy()  # to_pil_image's float→uint8 rule
    for i, (cr, ci) in enumerate(c):
        t = reference.MobiusMPDTransform(p=1.0, background="padded" if background == "padded" else "none")
        t._choose_c = lambda cr=cr, ci=ci: (cr, ci)  # the same drawn parameters
        ref = np.asarray(t(Image.fromarray(imgs[i])), dtype=np.int16)
        diff = np.abs(ref - ours_u8[i].astype(np.int16))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01  # float rounding at the uint8 cut, nothing else


def test_black_background_and_identity():
    x = torch.rand(2, 3, 32, 32)
    zero = torch.zeros(2)
    assert torch.allclose(mobius_warp(x, zero, zero), x, atol=1e-5)  # c = 0, d = 1: identity
    warped = mobius_warp(torch.ones(1, 3, 32, 32), torch.tensor([0.4]), torch.tensor([0.0]))
    padded = mobius_warp(torch.ones(1, 3, 32, 32), torch.tensor([0.4]), torch.tensor([0.0]), background="padded")
    assert warped.min() == 0 and torch.allclose(padded, torch.ones_like(padded))
    with pytest.raises(UserError, match="background"):
        mobius_warp(x, zero, zero, background="white")


def test_mpd_draws_like_the_paper():
    g = torch.Generator().manual_seed(0)
    cr, ci = draw_c(4000, low=0.1, high=0.3, g=g)
    real = cr != 0
    assert torch.all((cr == 0) | (ci == 0)) and abs(real.float().mean().item() - 0.5) < 0.03
    mags = torch.where(real, cr, ci).abs()
    assert mags.min() >= 0.1 and mags.max() <= 0.3 and abs((torch.where(real, cr, ci) > 0).float().mean() - 0.5) < 0.03
    aug = AUGMENTATIONS.get("mpd")(p=0.8)
    x = torch.rand(500, 3, 16, 16)
    out = aug(x, torch.Generator().manual_seed(1))
    unchanged = (out == x).flatten(1).all(1).float().mean().item()
    assert abs(unchanged - 0.2) < 0.06


@pytest.mark.parametrize("view", ["left", "right", "top", "bottom"])
@pytest.mark.parametrize("background", ["black", "padded"])
def test_pd_views_are_quantized_as_the_authors_package(view, background):
    # the suite's (and `generate pd`'s) uint8 view against mobius-mpd's PIL output for the same c: no bias
    from ssl_robustbench.benchmarks.perspective import VIEWS, perspective_view

    imgs = _images(4, 96, 128)
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255
    ours = (perspective_view(x, view, background, magnitude=0.3, d=1.0) * 255).round().permute(0, 2, 3, 1).numpy()
    sx, sy = VIEWS[view]
    t = reference.MobiusMPDTransform(p=1.0, background="padded" if background == "padded" else "none")
    t._choose_c = lambda: (sx * 0.3, sy * 0.3)
    ref = np.stack([np.asarray(t(Image.fromarray(img))) for img in imgs]).astype(float)
    diff = ours - ref
    assert np.abs(diff).max() <= 1, (view, background)
    assert abs(diff.mean()) <= 0.05 and np.abs(diff).mean() <= 0.05, (view, background, diff.mean())
