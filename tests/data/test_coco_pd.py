"""COCO-PD (issue 35, item 3): ``robustbench generate pd --annotations`` writes the PD views of a COCO-format
detection set with boxes and polygons moved along; the annotation files load with pycocotools."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from torchvision import tv_tensors

from ssl_robustbench.cli import main
from ssl_robustbench.transforms.geometric import MobiusPerspective


@pytest.fixture
def coco(tmp_path):
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i, (w, h) in enumerate([(96, 64), (64, 80), (80, 80)], 1):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path / f"{i:012d}.jpg")
        images.append({"id": i, "file_name": f"{i:012d}.jpg", "width": w, "height": h})
        x, y = 10.0 + i, 12.0
        annotations += [
            {"id": 10 * i, "image_id": i, "category_id": 1, "bbox": [x, y, 20.0, 16.0], "area": 320.0, "iscrowd": 0,
             "segmentation": [[x, y, x + 20, y, x + 20, y + 16, x, y + 16]]},
            {"id": 10 * i + 1, "image_id": i, "category_id": 2, "bbox": [0.0, 0.0, 3.0, 3.0], "area": 9.0,
             "iscrowd": 0, "segmentation": [[0, 0, 3, 0, 3, 3, 0, 3]]},  # a corner: gone in some views
        ]
    (tmp_path / "instances.json").write_text(json.dumps({
        "images": images, "annotations": annotations, "info": {"description": "mini"},
        "categories": [{"id": 1, "name": "thing"}, {"id": 2, "name": "corner"}]}))
    return tmp_path


def test_coco_pd_views_with_annotations_load_in_pycocotools(coco, tmp_path):
    from pycocotools.coco import COCO

    out = tmp_path / "coco-pd"
    result = CliRunner().invoke(main, ["generate", "pd", "--out", str(out), "--annotations",
                                       str(coco / "instances.json"), "--data-root", str(coco), "--magnitude", "0.4"])
    assert result.exit_code == 0, result.output
    dropped = 0
    for folder, view, background in [("PD-L", "left", "black"), ("PD-T", "top", "black"), ("PD-RI", "right",
                                                                                            "padded")]:
        api = COCO(str(out / "annotations" / f"instances_{folder}.json"))
        assert sorted(api.getImgIds()) == [1, 2, 3] and sorted(api.getCatIds()) == [1, 2]
        transform = MobiusPerspective(view=view, high=0.4, background=background)
        params = {"apply": True, **transform.sample()}
        for image in api.loadImgs(api.getImgIds()):
            w, h = image["width"], image["height"]
            assert Image.open(out / folder / image["file_name"]).size == (w, h)
            for ann in api.loadAnns(api.getAnnIds(imgIds=image["id"])):
                x, y, bw, bh = ann["bbox"]
                assert 0 <= x and 0 <= y and x + bw <= w + 1e-6 and y + bh <= h + 1e-6
                assert api.annToMask(ann).any()  # the polygon decodes to pixels
            source = json.loads((coco / "instances.json").read_text())
            for ann in [a for a in source["annotations"] if a["image_id"] == image["id"] and a["category_id"] == 1]:
                want = transform.transform(tv_tensors.BoundingBoxes(torch.tensor([ann["bbox"]]), format="XYWH",
                                                                    canvas_size=(h, w)), params)[0].tolist()
                got = api.loadAnns(ann["id"])[0]["bbox"]
                assert got == pytest.approx(want, abs=0.01)
        dropped += 6 - len(api.getAnnIds())
    assert dropped > 0  # the corner boxes leave the image in the views that push that corner out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "coco-pd" and len(manifest["source"]["annotations_sha256"]) == 64


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("images"), "is not a COCO instances file"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, -3, 4]), "non-negative sizes"),
    (lambda d: d["annotations"][0].update(image_id=99), "refers to image 99"),
    (lambda d: d["images"][0].update(file_name="../escape.jpg"), "must be a relative path"),
    (lambda d: d["images"][0].update(width=97), "says 97×64"),
])
def test_bad_coco_files_are_one_clear_error(coco, tmp_path, edit, message):
    data = json.loads((coco / "instances.json").read_text())
    edit(data)
    (coco / "bad.json").write_text(json.dumps(data))
    result = CliRunner().invoke(main, ["generate", "pd", "--out", str(tmp_path / "o"), "--annotations",
                                       str(coco / "bad.json"), "--data-root", str(coco)])
    assert result.exit_code == 2 and message in result.output, result.output
