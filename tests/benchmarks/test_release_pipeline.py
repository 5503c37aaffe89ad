"""On-the-fly ImageNet-C and ImageNet-PD on ImageNet-layout photos start from the released benchmark's input
(issue 32, items 1 and 3): PIL decode, PIL Resize(256, bilinear), CenterCrop(224), the corruption and the JPEG-85
save (or the perspective view), then the model's view of a released 224² image — for a bilinear and a bicubic card
alike. Checked against that pipeline written out with PIL and Hendrycks' own ``imagenet_c`` code
(``make_imagenet_c.py``'s functions) on real photographs; a ``generate pd`` tree reads as the same pixels."""

from __future__ import annotations

import io
import types

import numpy as np
import pytest
import torch
from PIL import Image

from ssl_robustbench.benchmarks.base import CLEAN, Condition
from ssl_robustbench.benchmarks.corruptions import CorruptionBenchmark
from ssl_robustbench.benchmarks.perspective import PerspectiveBenchmark, perspective_view
from ssl_robustbench.config import build
from ssl_robustbench.data import DataRequest, ImageLoader, build_dataset
from ssl_robustbench.eval_config import EvalConfig
from ssl_robustbench.preprocess import Preprocess
from ssl_robustbench.transforms.corruptions.effects import frost_texture_files

from corruption_reference import load_hendrycks

WNIDS = ("n01440764", "n01443537")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """An ImageNet-layout val split of real photographs (the frost pictures shipped with imagecorruptions)."""
    root = tmp_path_factory.mktemp("imagenet")
    for i, path in enumerate(frost_texture_files()[:4]):
        target = root / "val" / WNIDS[i % 2] / f"ILSVRC2012_val_{i:08d}.JPEG"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.open(path).convert("RGB").save(target, quality=95)
    return root


def _release_input(path):
    """The released benchmarks' input written out with PIL: Resize(256) bilinear, CenterCrop(224)."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    size = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
    img = img.resize(size, Image.BILINEAR)
    left, top = int(round((size[0] - 224) / 2.0)), int(round((size[1] - 224) / 2.0))
    return img.crop((left, top, left + 224, top + 224))


def _model_view(x, input_size):
    """A released 224² image as the tree reader gives it to the model (center crop to the input size)."""
    off = (224 - input_size) // 2
    return x[:, off:off + input_size, off:off + input_size] if input_size < 224 else x


def _context(photos, input_size, interpolation, suite, **section):
    cfg = build(EvalConfig, {"data": {"name": "imagenet", "root": str(photos)}, "suites": [suite],
                             **({suite: section} if section else {})})
    pre = Preprocess(input_size=input_size, crop_pct=0.875, interpolation=interpolation)
    clean = build_dataset("imagenet", DataRequest(split="val", preprocess=pre, root=photos))
    return types.SimpleNamespace(cfg=cfg, clean=clean, input_size=input_size, preprocess=pre, num_classes=1000)


def _seen(bench, cond, ctx):
    """The uint8 images the model receives for ``cond``."""
    x, _ = next(iter(ImageLoader(bench.dataset(cond, ctx), batch_size=8)))
    transform = bench.transform(cond, ctx)
    if transform is not None:
        x = transform(x, torch.Generator().manual_seed(0))
    return (x * 255).round().to(torch.uint8)


def _released(path, corruption, severity, hendrycks, input_size):
    """make_imagenet_c.py written out with PIL: Resize(256) bilinear, CenterCrop(224), the corruption, a JPEG-85
    save; then the released tree's reader (center crop to the input size)."""
    img = _release_input(path)
    if corruption is not None:
        img = Image.fromarray(np.uint8(getattr(hendrycks, corruption)(img, severity)))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85)
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return _model_view(torch.from_numpy(np.asarray(img)).permute(2, 0, 1), input_size)


@pytest.mark.parametrize("interpolation, input_size", [("bilinear", 224), ("bicubic", 224), ("bicubic", 192)])
@pytest.mark.parametrize("corruption", [None, "contrast", "brightness", "pixelate", "jpeg_compression"])
def test_on_the_fly_c_equals_the_released_pipeline(photos, interpolation, input_size, corruption):
    hendrycks = load_hendrycks()
    ctx = _context(photos, input_size, interpolation, "c")
    bench = CorruptionBenchmark()
    cond = CLEAN if corruption is None else Condition(f"c:{corruption}", 3, {"corruption": corruption})
    got = _seen(bench, cond, ctx)
    for i, (path, _) in enumerate(ctx.clean.samples):
        want = _released(path, corruption, 3, hendrycks, input_size)
        assert got[i].shape == want.shape
        assert int((got[i].int() - want.int()).abs().max()) == 0, (corruption, interpolation, path)


@pytest.fixture(scope="module")
def pd_tree(photos, tmp_path_factory):
    """``robustbench generate pd`` of the photos (the CLI as a user runs it)."""
    from click.testing import CliRunner

    from ssl_robustbench.cli import main

    out = tmp_path_factory.mktemp("pd")
    result = CliRunner().invoke(main, ["generate", "pd", "--out", str(out), "--data", "imagenet", "--data-root",
                                       str(photos), "--split", "val", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("interpolation, input_size", [("bilinear", 224), ("bicubic", 224), ("bicubic", 192)])
@pytest.mark.parametrize("view, background", [("left", "black"), ("top", "padded")])
def test_pd_on_the_fly_and_generated_tree_are_one_protocol(photos, pd_tree, interpolation, input_size, view,
                                                           background):
    # one protocol for both paths: the view of the release's 224² input, then the model's center crop
    bench = PerspectiveBenchmark()
    cond = Condition(f"pd:{view}/{background}", 0, {"view": view, "background": background})
    fly_ctx = _context(photos, input_size, interpolation, "pd")
    tree_ctx = _context(photos, input_size, interpolation, "pd", root=str(pd_tree))
    fly, tree = _seen(bench, cond, fly_ctx), _seen(bench, cond, tree_ctx)
    assert fly.shape == tree.shape == (4, 3, input_size, input_size)
    assert torch.equal(fly, tree)
    for i, (path, _) in enumerate(fly_ctx.clean.samples):
        x = torch.from_numpy(np.asarray(_release_input(path))).permute(2, 0, 1)[None].float() / 255
        want = (perspective_view(x, view, background, magnitude=0.3, d=1.0)[0] * 255).round().to(torch.uint8)
        assert torch.equal(fly[i], _model_view(want, input_size)), path
    # the clean condition of both is the release's input too, so the drop compares like with like
    assert torch.equal(_seen(bench, CLEAN, fly_ctx), _seen(bench, CLEAN, tree_ctx))
