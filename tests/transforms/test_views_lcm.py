"""View generation (augmentations inserted before/after the crop, presets, multi-crop), the LCM warp, and the
augmentation preview."""

from __future__ import annotations

import cmath
import math

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ssl_robustbench.cli import main
from ssl_robustbench.errors import UserError
from ssl_robustbench.transforms.augment import AUGMENTATIONS
from ssl_robustbench.transforms.lcm import lcm_grid, lcm_warp
from ssl_robustbench.transforms.views import AugInsert, ViewGenerator, ViewSpec, preset, steps

SEEN: list[tuple[str, int]] = []


def _recorder(tag):
    def factory(**kwargs):
        def apply(x, g):
            SEEN.append((tag, x.shape[-1]))
            return x
        return apply
    return factory


AUGMENTATIONS.register("record_a")(_recorder("a"))
AUGMENTATIONS.register("record_b")(_recorder("b"))


def test_inserted_augmentations_run_at_their_place():
    SEEN.clear()
    gen = ViewGenerator([ViewSpec("global", 2, size=24)], default_size=24, color_strength=0.5,
                        extra=(AugInsert("record_a", "before_crop"), AugInsert("record_b", "after_crop")))
    views = gen(torch.rand(4, 3, 64, 64), torch.Generator().manual_seed(0))
    assert [v.shape for v in views] == [torch.Size([4, 3, 24, 24])] * 2
    assert SEEN == [("a", 64), ("b", 24)] * 2  # before the crop on the full image, after it on the view
    names = [s.name for s in steps(ViewSpec(), default_size=32, color_strength=1.0,
                                   inserts=(AugInsert("mpd", "end"),))]
    assert names == ["random_resized_crop", "color_jitter", "grayscale", "mpd"]


def test_presets_and_multi_crop_sizes():
    assert preset("mpd", "simclr") == AugInsert("mpd", "before_crop", {"p": 0.8, "low": 0.2, "high": 0.4, "d": 0.75})
    assert preset("mpd", "dino").at == "after_crop" and preset("mpd", "dino").args["d"] == 1.0
    assert preset("lcm", "swav").at == "after_crop" and preset("lcm", "byol").at == "before_crop"
    with pytest.raises(UserError, match="unknown augmentation 'mdp'"):
        preset("mdp", "simclr")
    gen = ViewGenerator([ViewSpec("global", 2), ViewSpec("local", 3, size_fraction=0.5, scale=(0.05, 0.4))],
                        default_size=32, color_strength=0.5)
    sizes = [v.shape[-1] for v in gen(torch.rand(2, 3, 64, 64), torch.Generator().manual_seed(0))]
    assert sizes == [32, 32, 16, 16, 16] and gen.num_views == 5
    with pytest.raises(UserError, match="'at' must be one of"):
        ViewGenerator([ViewSpec()], default_size=32, color_strength=0.5, extra=(AugInsert("mpd", "middle"),))


def test_lcm_grid_is_the_inverse_of_the_log_map():
    lam = complex(0.4, -0.3)
    grid = lcm_grid(torch.tensor([lam.real]), torch.tensor([lam.imag]), 5, 7, padded=False)[0]
    ys, xs = torch.linspace(-1, 1, 5), torch.linspace(-1, 1, 7)
    for i in (0, 2, 4):
        for j in (0, 3, 6):
            z = complex(float(grid[i, j, 0]), float(grid[i, j, 1]))
            w = cmath.log(lam * z + 1) / lam  # Ψ(z) = log(k z + c) / λ with k = λ, c = 1
            assert w == pytest.approx(complex(float(xs[j]), float(ys[i])), abs=1e-5)


def test_lcm_grid_equals_the_complex_formula_with_zoom_rotation_and_zero_lambda():
    lam = torch.tensor([complex(0.4, -0.3), complex(-0.8, 0.1), 0j, complex(0.05, 0.6)], dtype=torch.complex128)
    zoom, rotation = torch.tensor([1.0, 1.3, 0.8, 1.1]), torch.tensor([0.0, 0.5, -0.3, 1.2])
    grid = lcm_grid(lam.real.float(), lam.imag.float(), 9, 11, zoom=zoom, rotation=rotation, padded=False)
    f64 = torch.float64
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 9, dtype=f64), torch.linspace(-1, 1, 11, dtype=f64), indexing="ij")
    w = torch.complex(xs, ys)
    for i in range(len(lam)):
        quotient = w if lam[i] == 0 else (torch.exp(lam[i] * w) - 1) / lam[i]
        z = quotient / torch.polar(zoom[i].double(), rotation[i].double())
        assert torch.allclose(grid[i].double(), torch.stack((z.real, z.imag), -1), atol=2e-6), i


def test_lcm_warp_identity_background_and_effect():
    x = torch.rand(3, 3, 32, 32)
    zero = torch.zeros(3)
    assert torch.allclose(lcm_warp(x, zero, zero), x, atol=1e-5)  # λ → 0: the identity
    strong = lcm_warp(x, torch.full((3,), 0.8), zero)
    assert (strong == 0).all(dim=1).any()  # the view leaves the image: black background
    padded = lcm_warp(x, torch.full((3,), 0.8), zero, background="padded")
    assert not (padded == 0).all(dim=1).any()
    aug = AUGMENTATIONS.get("lcm")(p=1.0, low=0.5, high=0.5)
    assert (aug(x, torch.Generator().manual_seed(0)) - x).abs().mean() > 0.05
    assert torch.equal(AUGMENTATIONS.get("lcm")(p=0.0)(x, torch.Generator()), x)
    with pytest.raises(UserError):
        AUGMENTATIONS.get("lcm")(low=0.9, high=0.1)


def test_augment_preview_writes_a_grid(tmp_path, cache_dir):
    out = tmp_path / "preview.png"
    result = CliRunner().invoke(main, ["augment", "preview", "--aug", "mpd", "--aug", "lcm", "--n", "4", "--scale",
                                       "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    img = Image.open(out)
    assert img.height == 5 * (64 + 4) and img.width > 4 * 64  # original, mpd, lcm and two views


@pytest.mark.parametrize("name", ["mpd", "lcm"])
@pytest.mark.parametrize("p", [0.0, 0.5, 0.8, 1.0])
def test_warping_only_the_chosen_images_equals_warping_all_and_keeping_the_rest(name, p):
    """MPD / LCM with probability p warp only the images they change: the same images as warping the whole batch
    with the same draws and keeping the originals where the draw says so."""
    from ssl_robustbench.transforms.mobius import draw_c, mobius_warp

    x = torch.rand(12, 3, 20, 24, generator=torch.Generator().manual_seed(0))
    out = AUGMENTATIONS.get(name)(p=p)(x, torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)  # the draws, replayed in the augmentation's order
    if name == "mpd":
        c_real, c_imag = draw_c(len(x), low=0.1, high=0.3, g=g)
        keep = torch.rand(len(x), generator=g) >= p
        full = mobius_warp(x, c_real, c_imag)
    else:
        magnitude, angle = torch.rand(len(x), generator=g) * 0.5 + 0.3, torch.rand(len(x), generator=g) * 2 * math.pi
        r, theta = torch.rand(len(x), generator=g) * 0 + 1.0, (torch.rand(len(x), generator=g) * 2 - 1) * 0.0
        keep = torch.rand(len(x), generator=g) >= p
        full = lcm_warp(x, magnitude * torch.cos(angle), magnitude * torch.sin(angle), zoom=r, rotation=theta)
    assert torch.allclose(out, torch.where(keep.view(-1, 1, 1, 1), x, full), atol=1e-6)
    if 0 < p < 1:  # this seed gives both kinds of rows, so both paths of the augmentation run
        assert 0 < int(keep.sum()) < len(x)
