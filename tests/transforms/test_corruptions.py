"""The batched ImageNet-C engine against the reference ``imagecorruptions`` package, image by image.

Deterministic corruptions, and stochastic ones fed the same random draws (replayed into numpy), must agree to one
uint8 level per pixel; the two whose randomness cannot be replayed (shot noise: numpy's Poisson sampler; impulse
noise: scikit-image's own generator) are compared by statistics.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from ssl_robustbench.errors import UserError
from ssl_robustbench.transforms.corruptions import ALL_CORRUPTIONS, corrupt, table_for

from corruption_reference import RecordingDraws, load_reference, reference_batch

UNREPLAYABLE = {"shot_noise", "impulse_noise"}


def _images(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Smooth random colour images with some structure, uint8 [n, 3, h, w]."""
    base = torch.rand(n, 3, max(h // 8, 2), max(w // 8, 2), generator=torch.Generator().manual_seed(seed))
    x = torch.nn.functional.interpolate(base, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
    return (x * 255).round().to(torch.uint8)


@pytest.fixture(scope="module")
def ref():
    return load_reference()


@pytest.mark.parametrize("name", sorted(set(ALL_CORRUPTIONS) - UNREPLAYABLE))
def test_matches_reference_per_pixel(ref, name):
    # non-square, so height and width cannot be swapped unnoticed
    imgs = _images(2, 80, 96)
    for severity in (1, 3, 5):
        draws = RecordingDraws(seed=severity)
        ours = corrupt(imgs.float() / 255, name, severity, draws=draws, table="imagenet")
        ours = (ours * 255).round().permute(0, 2, 3, 1).numpy()
        theirs = reference_batch(ref, name, severity, imgs.permute(0, 2, 3, 1).numpy(), draws).astype(float)
        diff = np.abs(ours - theirs)
        assert diff.max() <= 1, (name, severity, diff.max())
        assert (diff > 0).mean() < 0.04, (name, severity, (diff > 0).mean())


@pytest.mark.parametrize("name", sorted(UNREPLAYABLE))
def test_unreplayable_noises_match_reference_statistics(ref, name):
    imgs = _images(8, 128, 128)
    np.random.seed(0)
    for severity in (1, 3, 5):
        ours = corrupt(imgs.float() / 255, name, severity, generator=torch.Generator().manual_seed(severity),
                       table="imagenet")
        ours = (ours * 255).round().permute(0, 2, 3, 1).numpy()
        theirs = reference_batch(ref, name, severity, imgs.permute(0, 2, 3, 1).numpy()).astype(float)
        clean = imgs.permute(0, 2, 3, 1).numpy().astype(float)
        for stat in (lambda o, c=clean: np.abs(o - c).mean(), lambda o, c=clean: (o != c).mean(), np.std):
            assert stat(ours) == pytest.approx(stat(theirs), rel=0.05), (name, severity)


def test_faithful_mode_is_the_released_jpeg_roundtrip():
    x = _images(2, 64, 64).float() / 255
    plain = corrupt(x, "fog", 2, generator=torch.Generator().manual_seed(0))
    faithful = corrupt(x, "fog", 2, generator=torch.Generator().manual_seed(0), faithful=True)
    for a, b in zip(plain, faithful, strict=True):
        buf = io.BytesIO()
        Image.fromarray((a * 255).round().byte().permute(1, 2, 0).numpy()).save(buf, "JPEG", quality=85)
        pil = torch.from_numpy(np.array(Image.open(buf))).permute(2, 0, 1).float()
        assert (pil - b * 255).abs().max() <= 1


@pytest.mark.parametrize("name", ALL_CORRUPTIONS)
def test_cifar_table_on_small_images(name):
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0)).mul(255).round() / 255
    a = corrupt(x, name, 4, generator=torch.Generator().manual_seed(1))
    b = corrupt(x, name, 4, generator=torch.Generator().manual_seed(1))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b), "same seed, same corruption"
    assert 0 <= a.min() and a.max() <= 1
    assert torch.equal((a * 255).round(), a * 255 - (a * 255 - (a * 255).round())), "on the uint8 grid"
    assert (a - x).abs().mean() > 1 / 255, f"{name} at severity 4 leaves the image almost unchanged"


def test_table_rule_and_errors():
    assert table_for(224, 224) == "imagenet" and table_for(32, 32) == "cifar" and table_for(64, 64) == "cifar"
    assert table_for(64, 64, "imagenet") == "imagenet"
    x = torch.rand(1, 3, 40, 40)
    with pytest.raises(UserError, match="unknown corruption 'fgo'"):
        corrupt(x, "fgo", 1)
    with pytest.raises(UserError, match="severity must be 1–5"):
        corrupt(x, "fog", 6)
    with pytest.raises(UserError, match="at least 32"):
        corrupt(torch.rand(1, 3, 16, 16), "fog", 1)
    with pytest.raises(UserError, match="table"):
        table_for(64, 64, "tiny")
