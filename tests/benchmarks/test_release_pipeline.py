"""On-the-fly ImageNet-C on ImageNet-layout photos starts from the released benchmark's input (issue 32, item 1):
PIL decode, PIL Resize(256, bilinear), CenterCrop(224), the corruption, the JPEG-85 save, then the model's view of a
released 224² image — for a bilinear and a bicubic card alike. Checked against that pipeline written out with PIL
and Hendrycks' own ``imagenet_c`` code (``make_imagenet_c.py``'s functions) on real photographs."""

from __future__ import annotations

import io
import types

import numpy as np
import pytest
import torch
from PIL import Image

from ssl_robustbench.benchmarks.base import CLEAN, Condition
from ssl_robustbench.benchmarks.corruptions import CorruptionBenchmark
from ssl_robustbench.config import build
from ssl_robustbench.data import DataRequest, ImageLoader, build_dataset
from ssl_robustbench.data.preprocess import Preprocess
from ssl_robustbench.eval_config import EvalConfig
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


def _released(path, corruption, severity, hendrycks, input_size):
    """make_imagenet_c.py written out with PIL: Resize(256) bilinear, CenterCrop(224), the corruption, a JPEG-85
    save; then the released tree's reader (center crop to the input size)."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    size = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
    img = img.resize(size, Image.BILINEAR)
    left, top = int(round((size[0] - 224) / 2.0)), int(round((size[1] - 224) / 2.0))
    img = img.crop((left, top, left + 224, top + 224))
    if corruption is not None:
        img = Image.fromarray(np.uint8(getattr(hendrycks, corruption)(img, severity)))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85)
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    x = torch.from_numpy(np.asarray(img)).permute(2, 0, 1)
    off = (224 - input_size) // 2
    return x[:, off:off + input_size, off:off + input_size] if input_size < 224 else x


@pytest.mark.parametrize("interpolation, input_size", [("bilinear", 224), ("bicubic", 224), ("bicubic", 192)])
@pytest.mark.parametrize("corruption", [None, "contrast", "brightness", "pixelate", "jpeg_compression"])
def test_on_the_fly_c_equals_the_released_pipeline(photos, interpolation, input_size, corruption):
    hendrycks = load_hendrycks()
    cfg = build(EvalConfig, {"data": {"name": "imagenet", "root": str(photos)}, "suites": ["c"]})
    pre = Preprocess(input_size=input_size, crop_pct=0.875, interpolation=interpolation)
    clean = build_dataset("imagenet", DataRequest(split="val", preprocess=pre, root=photos))
    ctx = types.SimpleNamespace(cfg=cfg, clean=clean, input_size=input_size, preprocess=pre, num_classes=1000)
    bench = CorruptionBenchmark()
    cond = CLEAN if corruption is None else Condition(f"c:{corruption}", 3, {"corruption": corruption})
    x, _ = next(iter(ImageLoader(bench.dataset(cond, ctx), batch_size=8)))
    got = (bench.transform(cond, ctx)(x, torch.Generator().manual_seed(0)) * 255).round().to(torch.uint8)
    for i, (path, _) in enumerate(clean.samples):
        want = _released(path, corruption, 3, hendrycks, input_size)
        assert got[i].shape == want.shape
        assert int((got[i].int() - want.int()).abs().max()) == 0, (corruption, interpolation, path)
