"""The embedded dataset: seeded, balanced, fixed splits, cached."""

import numpy as np
import torch

from ssl_robustbench.data import DataRequest, build_dataset
from ssl_robustbench.data.embedded import CLASSES, SPLITS, generate, load_split
from ssl_robustbench.preprocess import Preprocess


def test_generation_is_deterministic_per_index_and_split():
    a, la = generate("val", n=20)
    b, lb = generate("val", n=30)
    c, _ = generate("test", n=20)
    d, _ = generate("val", n=20, seed=1)
    assert np.array_equal(a, b[:20]) and np.array_equal(la, lb[:20])
    assert not np.array_equal(a, c) and not np.array_equal(a, d)
    assert a.shape == (20, 64, 64, 3) and a.dtype == np.uint8
    assert np.bincount(lb, minlength=10).tolist() == [3] * 10


def test_images_vary_within_a_class():
    imgs, labels = generate("train", n=40)
    same = imgs[labels == 0].astype(float)
    assert np.abs(same[0] - same[1]).mean() > 20


def test_split_cache_and_dataset_view(cache_dir):
    images, labels = load_split("val", cache_dir=cache_dir)
    assert images.shape == (SPLITS["val"][1], 3, 64, 64) and images.dtype == torch.uint8
    again, _ = load_split("val", cache_dir=cache_dir)
    assert torch.equal(images, again)
    ds = build_dataset("embedded", DataRequest(split="val", preprocess=Preprocess(input_size=64), cache_dir=cache_dir))
    x, y = ds[3]
    assert x.shape == (3, 64, 64) and 0 <= float(x.min()) and float(x.max()) <= 1 and y == 3
    assert ds.classes == list(CLASSES)
    big = build_dataset("embedded", DataRequest(split="val", preprocess=Preprocess(input_size=96), cache_dir=cache_dir))
    assert big[0][0].shape == (3, 96, 96)
    sub = build_dataset("embedded", DataRequest(split="val", preprocess=Preprocess(input_size=64),
                                                cache_dir=cache_dir), limit=50)
    assert len(sub) == 50 and sub.classes == list(CLASSES)


def test_batched_items_equal_single_items_through_a_loader(cache_dir):
    from torch.utils.data import DataLoader

    for size in (64, 96):  # without a transform (batched conversion) and with one (per image)
        ds = build_dataset("embedded", DataRequest(split="val", preprocess=Preprocess(input_size=size),
                                                   cache_dir=cache_dir), limit=40)
        x, y = next(iter(DataLoader(ds, batch_size=16)))
        singles = [ds[i] for i in range(16)]
        assert torch.equal(x, torch.stack([s[0] for s in singles])) and x.dtype == torch.float32
        assert y.tolist() == [s[1] for s in singles]
