"""NT-Xent against a naive reference; batched augmentations."""

import math

import pytest
import torch

from ssl_robustbench.losses import nt_xent
from ssl_robustbench.transforms.augment import compose, random_resized_crop
from ssl_robustbench.transforms.views import ViewSpec, steps


def naive_nt_xent(z1, z2, t):
    z = torch.cat([z1, z2])
    z = z / z.norm(dim=1, keepdim=True)
    n, b = len(z), len(z1)
    total = 0.0
    for i in range(n):
        j = (i + b) % n
        denom = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(n) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[j]) / t) / denom)
    return total / n


@pytest.mark.parametrize("t", [0.1, 0.5])
def test_nt_xent_matches_naive(t):
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    assert float(nt_xent(z1, z2, temperature=t)) == pytest.approx(naive_nt_xent(z1, z2, t), rel=1e-5)


def test_nt_xent_prefers_aligned_pairs():
    z = torch.randn(8, 16)
    assert nt_xent(z, z + 0.01 * torch.randn(8, 16)) < nt_xent(z, torch.randn(8, 16))


def test_full_crop_without_flip_is_identity():
    x = torch.rand(3, 3, 16, 16)
    out = random_resized_crop(size=16, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=0.0)(x, torch.Generator())
    assert torch.allclose(out, x, atol=1e-5)
    flipped = random_resized_crop(size=16, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=1.0)(x, torch.Generator())
    assert torch.allclose(flipped, x.flip(-1), atol=1e-5)


def test_pipeline_is_seeded_batched_and_in_range():
    x = torch.rand(8, 3, 32, 32)
    aug = compose(steps(ViewSpec(size=24), default_size=24, color_strength=0.5))  # SimCLR's CIFAR pipeline
    a = aug(x, torch.Generator().manual_seed(1))
    b = aug(x, torch.Generator().manual_seed(1))
    c = aug(x, torch.Generator().manual_seed(2))
    assert a.shape == (8, 3, 24, 24) and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1
    assert not torch.allclose(a[0], a[1])  # per-sample parameters
