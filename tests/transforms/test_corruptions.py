"""The batched ImageNet-C engine against the reference code, image by image.

Default (``reference="hendrycks"``): Hendrycks' own ``imagenet_c`` (the code of make_imagenet_c.py, which made
the released dataset; 224² images), with ImageMagick through Wand for motion blur and snow. Selectable
``imagecorruptions``: that package. Deterministic corruptions, and stochastic ones fed the same random draws
(replayed into numpy), must agree to one uint8 level per pixel, with a mean difference (bias) near zero; the two
whose randomness cannot be replayed (shot noise: numpy's Poisson sampler; impulse noise: scikit-image's own
generator) are compared by statistics.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
import torch
from PIL import Image

from ssl_robustbench.errors import UserError
from ssl_robustbench.transforms.corruptions import ALL_CORRUPTIONS, corrupt, table_for
from ssl_robustbench.transforms.corruptions.effects import PER_IMAGE_CPU, frost_textures

from corruption_reference import RecordingDraws, load_hendrycks, load_reference, reference_batch, wand_missing

UNREPLAYABLE = {"shot_noise", "impulse_noise"}
MAGICK = {"motion_blur", "snow"}  # ImageMagick in Hendrycks' code


def _images(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Smooth random colour images with some structure, uint8 [n, 3, h, w]."""
    base = torch.rand(n, 3, max(h // 8, 2), max(w // 8, 2), generator=torch.Generator().manual_seed(seed))
    x = torch.nn.functional.interpolate(base, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
    return (x * 255).round().to(torch.uint8)


@pytest.fixture(scope="module")
def ref():
    return load_reference()


@pytest.fixture(scope="module")
def hendrycks():
    return load_hendrycks()


def _assert_agrees(ours: np.ndarray, theirs: np.ndarray, what: tuple) -> None:
    """Max one level, and no bias: |mean difference| and the share of differing values tiny."""
    diff = ours.astype(float) - theirs.astype(float)
    assert np.abs(diff).max() <= 1, (what, np.abs(diff).max())
    assert abs(diff.mean()) <= 0.01, (what, "mean difference", diff.mean())
    assert (diff != 0).mean() <= 0.005, (what, "share differing", (diff != 0).mean())


def _run(name, severity, imgs, reference, module):
    draws = RecordingDraws(seed=severity)
    ours = corrupt(imgs.float() / 255, name, severity, draws=draws, table="imagenet", faithful=False,
                   reference=reference)
    ours = (ours * 255).round().permute(0, 2, 3, 1).numpy()
    return ours, reference_batch(module, name, severity, imgs.permute(0, 2, 3, 1).numpy(), draws)


@pytest.mark.parametrize("name", sorted(set(ALL_CORRUPTIONS) - UNREPLAYABLE))
def test_default_matches_hendrycks_code_per_pixel(hendrycks, name):
    if name in MAGICK and wand_missing():
        pytest.skip(wand_missing())
    imgs = _images(2, 224, 224)  # make_imagenet_c.py only knows 224² images
    for severity in (1, 2, 3, 4, 5):
        _assert_agrees(*_run(name, severity, imgs, "hendrycks", hendrycks), (name, severity))


@pytest.mark.parametrize("name", sorted(set(ALL_CORRUPTIONS) - UNREPLAYABLE))
def test_imagecorruptions_reference_matches_that_package_per_pixel(ref, name):
    # non-square, so height and width cannot be swapped unnoticed
    imgs = _images(2, 80, 96)
    for severity in (1, 3, 5):
        ours, theirs = _run(name, severity, imgs, "imagecorruptions", ref)
        diff = ours - theirs.astype(float)
        assert np.abs(diff).max() <= 1, (name, severity, np.abs(diff).max())
        assert abs(diff.mean()) <= 0.04 and (diff != 0).mean() < 0.04, (name, severity, diff.mean())


@pytest.mark.parametrize("name", sorted(PER_IMAGE_CPU))
@pytest.mark.parametrize("reference", ["hendrycks", "imagecorruptions"])
def test_batched_effect_equals_the_per_image_library_call(name, reference, monkeypatch):
    """On the CPU these corruptions run the reference's own call per image (PER_IMAGE_CPU); elsewhere (CUDA) the
    batched tensor effect runs. It must give the same images: here forced on the CPU, at both tables' sizes."""
    for size in ((224, 224), (150, 200), (40, 48)):
        x = _images(3, *size, seed=1).float() / 255
        for severity in (1, 2, 3, 4, 5):
            for faithful in (False, True):
                per_image = corrupt(x, name, severity, faithful=faithful, reference=reference)
                with monkeypatch.context() as m:
                    m.setattr("ssl_robustbench.transforms.corruptions.effects.PER_IMAGE_CPU", {})
                    batched = corrupt(x, name, severity, faithful=faithful, reference=reference)
                assert per_image.shape == batched.shape and per_image.dtype == batched.dtype
                _assert_agrees((per_image * 255).round().numpy(), (batched * 255).round().numpy(),
                               (name, size, severity, faithful))
    # float64 in, float64 out, on the grid exactly as the batched path gives it (k / 255 in float64)
    x64 = _images(2, 64, 64, seed=2).double() / 255
    with monkeypatch.context() as m:
        m.setattr("ssl_robustbench.transforms.corruptions.effects.PER_IMAGE_CPU", {})
        batched = corrupt(x64, name, 3, reference=reference)
    per_image = corrupt(x64, name, 3, reference=reference)
    assert per_image.dtype == batched.dtype == torch.float64
    for out in (per_image, batched):
        assert torch.equal(out, (out * 255).round() / 255)


@pytest.mark.parametrize("name", sorted(UNREPLAYABLE))
@pytest.mark.parametrize("which", ["hendrycks", "imagecorruptions"])
def test_unreplayable_noises_match_reference_statistics(request, name, which):
    module = request.getfixturevalue("hendrycks" if which == "hendrycks" else "ref")
    imgs = _images(8, 224, 224) if which == "hendrycks" else _images(8, 128, 128)
    np.random.seed(0)
    for severity in (1, 3, 5):
        ours = corrupt(imgs.float() / 255, name, severity, generator=torch.Generator().manual_seed(severity),
                       table="imagenet", faithful=False, reference=which)
        ours = (ours * 255).round().permute(0, 2, 3, 1).numpy()
        theirs = reference_batch(module, name, severity, imgs.permute(0, 2, 3, 1).numpy()).astype(float)
        clean = imgs.permute(0, 2, 3, 1).numpy().astype(float)
        for stat in (lambda o, c=clean: np.abs(o - c).mean(), lambda o, c=clean: (o != c).mean(), np.std):
            assert stat(ours) == pytest.approx(stat(theirs), rel=0.05), (name, severity)
        # no bias: the mean change agrees within 5 standard errors of the difference of two sample means
        change_ours, change_theirs = ours - clean, theirs - clean
        se = np.sqrt((change_ours.var() + change_theirs.var()) / change_ours.size)
        assert abs(change_ours.mean() - change_theirs.mean()) <= 5 * se, (name, severity, "bias")


def test_frost_textures_are_hendrycks_files():
    # the five textures make_imagenet_c.py samples (frost1–5; its frost6 is never drawn), sha256 of the files in
    # hendrycks/robustness ImageNet-C/imagenet_c/imagenet_c/frost/
    expected = ["ff9f907860bd7a835d459e32f9d588062b7f61ee267343cc7222b56753a14755",
                "fe211a89b336999c207a852ce05818d4545d0b57c5beadd824b4cc9d9a9b6137",
                "2d0d50b4a9bb213f38b024ef7768731bb83cc08d2f26b5766bbc167cdfa0e504",
                "3f8b91ca1a9fa7167b09e773da53f5ae60d0a1fd88f02a783f6e328a72887f6e",
                "5fc6a19df4a429ba68abdcc8f8a4278d4c9f81c9ccafd2c92ab0c8cf8992ebd2"]
    from ssl_robustbench.transforms.corruptions.effects import frost_texture_files

    assert [hashlib.sha256(f.read_bytes()).hexdigest() for f in frost_texture_files()] == expected
    assert [tuple(t.shape[-2:]) for t in frost_textures()] == [(600, 900), (315, 560), (315, 560), (350, 527),
                                                               (495, 660)]


def test_references_differ_where_the_package_departs_from_the_script():
    # elastic constants and frost texture scale differ; noise does not
    x = _images(2, 224, 224).float() / 255
    for name, differs in (("elastic_transform", True), ("frost", True), ("gaussian_noise", False)):
        a = corrupt(x, name, 3, generator=torch.Generator().manual_seed(0), faithful=False)
        b = corrupt(x, name, 3, generator=torch.Generator().manual_seed(0), faithful=False,
                    reference="imagecorruptions")
        assert (not torch.equal(a, b)) == differs, name
    with pytest.raises(UserError, match="reference must be hendrycks or imagecorruptions"):
        corrupt(x, "fog", 1, reference="wand")


def test_default_ends_with_the_released_jpeg_roundtrip():
    # imagenet table: every released ImageNet-C image went through JPEG quality 85 (Image.save(quality=85))
    x = _images(2, 128, 128).float() / 255
    plain = corrupt(x, "gaussian_noise", 2, generator=torch.Generator().manual_seed(0), faithful=False)
    released = corrupt(x, "gaussian_noise", 2, generator=torch.Generator().manual_seed(0))
    for a, b in zip(plain, released, strict=True):
        buf = io.BytesIO()
        Image.fromarray((a * 255).round().byte().permute(1, 2, 0).numpy()).save(buf, "JPEG", quality=85)
        pil = torch.from_numpy(np.array(Image.open(buf))).permute(2, 0, 1).float()
        assert torch.equal(pil, (b * 255).round())
    # the JPEG step smooths noise: the released images have clearly less noise than the unencoded ones
    assert (released - x).std() < 0.9 * (plain - x).std()
    # cifar table: CIFAR-10-C is stored as raw uint8 arrays, so faithful adds nothing
    small = _images(2, 32, 32).float() / 255
    assert torch.equal(corrupt(small, "fog", 2, generator=torch.Generator().manual_seed(0)),
                       corrupt(small, "fog", 2, generator=torch.Generator().manual_seed(0), faithful=False))


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


@pytest.mark.parametrize("size", [(224, 224), (37, 53), (17, 16)])
def test_jpeg_roundtrip_gives_pils_pixels_whichever_bindings_run(size, monkeypatch):
    """The JPEG step (faithful round trip and jpeg_compression) equals PIL's Image.save(quality=q) + decode at
    the qualities in use; the torchvision path is only taken where it agrees with PIL (checked once)."""
    from ssl_robustbench.transforms.corruptions import ops

    g = torch.Generator().manual_seed(0)
    noise = torch.rand(3, 3, *size, generator=g)
    smooth = torch.nn.functional.interpolate(torch.rand(3, 3, 4, 4, generator=g), size=size, mode="bicubic")
    for x in (noise, smooth.clamp(0, 1)):
        for q in (85, 25, 18, 15, 10, 7, 80, 40):
            pil = ops._stack(ops._pil_jpeg_roundtrip(ops.to_uint8(x), q)).float() / 255
            assert torch.equal(ops.jpeg_roundtrip(x, q), pil), q
    ops._torchvision_jpeg_is_pils.cache_clear()
    monkeypatch.setattr(ops, "_torchvision_jpeg_roundtrip", lambda images, q: list(images))  # a build that disagrees
    assert not ops._torchvision_jpeg_is_pils()
    pil = ops._stack(ops._pil_jpeg_roundtrip(ops.to_uint8(noise), 85)).float() / 255
    assert torch.equal(ops.jpeg_roundtrip(noise, 85), pil)  # falls back to PIL
    ops._torchvision_jpeg_is_pils.cache_clear()


@pytest.mark.parametrize("mode", ["reflect", "nearest"])
@pytest.mark.parametrize("sigma", [1.0, 19.52, 170.8])  # short taps; elastic s2 and s1 (matrix path, folded)
def test_gaussian_blur_equals_scipy_for_short_and_long_kernels(mode, sigma):
    from scipy import ndimage

    from ssl_robustbench.transforms.corruptions import ops

    field = torch.rand(2, 48, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    ours = ops.gaussian_blur(field, sigma, mode=mode, truncate=3).numpy()
    theirs = np.stack([ndimage.gaussian_filter(f, sigma, mode=mode, truncate=3) for f in field.numpy()])
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


class _CorruptedImages(torch.utils.data.Dataset):
    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return corrupt(self.x[i:i + 1], "pixelate", 2)[0]


def test_threaded_corruptions_work_in_forked_loader_workers():
    # the engine's thread pool started in this process must not be inherited (dead) by a forked worker
    x = _images(4, 64, 64).float() / 255
    expected = corrupt(x, "pixelate", 2)  # starts the pool here
    loader = torch.utils.data.DataLoader(_CorruptedImages(x), batch_size=2, num_workers=1,
                                         multiprocessing_context="fork", timeout=120)
    assert torch.equal(torch.cat(list(loader)), expected)


def test_elastic_matches_hendrycks_on_photographs(hendrycks):
    """Real photos (the frost pictures shipped with imagecorruptions, 224² crops): the random-affine step is
    OpenCV's own warpAffine on the CPU, so elastic agrees within one grey level at every severity."""
    from PIL import Image

    from ssl_robustbench.transforms.corruptions.effects import frost_texture_files

    crops = [np.asarray(Image.open(p).convert("RGB"))[:224, :224] for p in frost_texture_files()[:3]]
    imgs = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()
    for severity in (1, 2, 3, 4, 5):
        ours, theirs = _run("elastic_transform", severity, imgs, "hendrycks", hendrycks)
        diff = np.abs(ours - theirs.astype(float))
        assert diff.max() <= 1, (severity, diff.max(), (diff > 1).mean())
