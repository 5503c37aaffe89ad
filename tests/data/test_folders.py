"""ImageFolder trees: the ImageNet wnid index, clear errors for bad trees, preprocessing per card."""

import numpy as np
import pytest
import torch
from PIL import Image

from ssl_robustbench.data import DataRequest, ImageLoader, build_dataset
from ssl_robustbench.data.folders import imagenet_wnids
from ssl_robustbench.errors import UserError
from ssl_robustbench.preprocess import Preprocess


def tree(root, classes, size=(300, 200)):
    for c in classes:
        (root / c).mkdir(parents=True)
        arr = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(arr).save(root / c / "img.JPEG")


def test_imagenet_subset_keeps_the_1000_class_index(tmp_path):
    wnids = imagenet_wnids()
    assert len(wnids) == 1000 and wnids[:2] == ["n01440764", "n01443537"] and wnids == sorted(wnids)
    tree(tmp_path / "val", ["n01443537", "n15075141"])  # goldfish (1) and toilet tissue (999)
    ds = build_dataset("imagenet", DataRequest(split="val", preprocess=Preprocess(), root=tmp_path))
    assert len(ds.classes) == 1000 and sorted(ds.targets) == [1, 999]
    x, _ = ds[0]
    assert x.shape == (3, 224, 224) and x.dtype == torch.uint8  # the loader makes it float, a batch at once
    batch, labels = next(iter(ImageLoader(ds, batch_size=2, num_workers=1)))
    assert batch.dtype == torch.float32 and torch.equal(batch[0], x.float() / 255)
    assert sorted(labels.tolist()) == [1, 999]


def test_unknown_wnid_and_missing_split(tmp_path):
    tree(tmp_path / "val", ["n01443537", "cats"])
    with pytest.raises(UserError, match="'cats' .* is not one of the classes the head scores .the ImageNet-1k wnids"):
        build_dataset("imagenet", DataRequest(split="val", preprocess=Preprocess(), root=tmp_path))
    with pytest.raises(UserError, match="image folder not found.*splits under .*: val; pick one with --set"):
        build_dataset("imagenet", DataRequest(split="train", preprocess=Preprocess(), root=tmp_path))
    with pytest.raises(UserError, match="needs --data-root"):
        build_dataset("cifar10", DataRequest(split="train", preprocess=Preprocess()))
    with pytest.raises(UserError, match="data.download=true"):
        build_dataset("cifar10", DataRequest(split="train", preprocess=Preprocess(), root=tmp_path))


def test_preprocess_resize_crop_and_interpolation():
    p = Preprocess(input_size=224, crop_pct=0.875, interpolation="bicubic")
    assert p.resize_size == 256
    img = Image.fromarray(np.zeros((300, 400, 3), dtype=np.uint8))
    assert p.transform(None)(img).shape == (3, 224, 224)
    small = Image.fromarray(np.zeros((32, 32, 3), np.uint8))
    assert Preprocess(input_size=32).transform(32)(small).shape == (3, 32, 32)


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_preprocess_matches_pil_resize_and_center_crop_within_one_grey_level(interpolation):
    """The reference eval transform (timm / torchvision): PIL Resize(256) + CenterCrop(224) + ToTensor."""
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).resize((500, 375), Image.BICUBIC)
    pil_filter = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}[interpolation]
    resized = photo.resize((341, 256), pil_filter)  # short side 256, long side 500 * 256 / 375 rounded
    left, top = (341 - 224) // 2, (256 - 224) // 2
    ref = torch.from_numpy(np.array(resized.crop((left, top, left + 224, top + 224)))).permute(2, 0, 1).float()
    out = Preprocess(input_size=224, crop_pct=0.875, interpolation=interpolation).transform(None)(photo)
    assert out.dtype == torch.uint8 and out.shape == (3, 224, 224)
    diff = (out.float() - ref).abs()
    assert float(diff.max()) <= 1.0 and float(diff.mean()) < 0.05


def _folder(root, split, classes, per_class=2):
    for c in classes:
        (root / split / c).mkdir(parents=True)
        for i in range(per_class):
            arr = np.full((40, 40, 3), 30 * i + 10 * len(c), dtype=np.uint8)
            Image.fromarray(arr).save(root / split / c / f"{i}.png")


def _request(root, split="train", classes=None):
    return DataRequest(split=split, preprocess=Preprocess(input_size=32, crop_pct=1.0), root=root,
                       classes=tuple(classes) if classes else None)


def test_test_classes_are_matched_to_the_heads_by_name(tmp_path):
    from ssl_robustbench.data import dataset_identity, head_classes

    _folder(tmp_path, "train", ["a", "b", "c"])
    _folder(tmp_path, "test", ["a", "c"])  # by position c would be label 1 (b's)
    classes = head_classes("imagefolder", _request(tmp_path))
    assert classes == ["a", "b", "c"]
    test = build_dataset("imagefolder", _request(tmp_path, "test", classes))
    assert test.classes == ["a", "b", "c"] and sorted(set(test.targets)) == [0, 2]
    assert dataset_identity(test)["classes_present"] == 2
    _folder(tmp_path, "val", ["a", "d"])  # a class the head was never trained on
    with pytest.raises(UserError, match="'d' .* not one of the classes the head scores .the training split"):
        build_dataset("imagefolder", _request(tmp_path, "val", classes))


def test_one_class_hidden_folders_and_link_loops(tmp_path):
    from ssl_robustbench.data import head_classes

    _folder(tmp_path, "train", ["only"])
    (tmp_path / "train" / ".ipynb_checkpoints").mkdir()  # hidden: not a class
    with pytest.raises(UserError, match="1 class folder.*at least 2 classes"):
        head_classes("imagefolder", _request(tmp_path))
    _folder(tmp_path, "train", ["other"])
    assert head_classes("imagefolder", _request(tmp_path)) == ["only", "other"]
    (tmp_path / "train" / "only" / ".hidden.png").write_bytes(b"not an image")  # hidden files are skipped
    ds = build_dataset("imagefolder", _request(tmp_path, "train", ["only", "other"]))
    assert len(ds) == 4
    (tmp_path / "train" / "only" / "loop").symlink_to(tmp_path / "train" / "only")
    with pytest.raises(UserError, match="reached twice through symbolic links"):
        build_dataset("imagefolder", _request(tmp_path, "train", ["only", "other"]))
    (tmp_path / "train" / "only" / "loop").unlink()
    (tmp_path / "train" / "only" / "into-other").symlink_to(tmp_path / "train" / "other")
    with pytest.raises(UserError, match="into-other is reached twice|other is reached twice"):
        build_dataset("imagefolder", _request(tmp_path, "train", ["only", "other"]))


def test_imagenet_evaluates_val_by_default_and_embedded_takes_no_root():
    from ssl_robustbench.config import DataConfig

    assert DataConfig(name="imagenet").eval_split == "val" and DataConfig().eval_split == "test"
    assert DataConfig(name="imagenet", eval_split="train").eval_split == "train"
    with pytest.raises(UserError, match="embedded dataset is generated.*--data-root"):
        DataConfig(name="embedded", root="/data")
