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
    (lambda d: d["annotations"][0].update(segmentation=[[1, 2, 3, 4, 5]]), "even number"),
    (lambda d: d["annotations"][0].update(segmentation=[1, 2, 3, 4, 5, 6]), "list of polygons"),
    (lambda d: d["annotations"][0].update(bbox=["1", 2, 3, 4]), "finite numbers"),
    (lambda d: d["annotations"][0].update(bbox=[True, 2, 3, 4]), "finite numbers"),
    (lambda d: d["annotations"][0].update(segmentation=[[0, 0, 3, 0, False, 3]]), "finite"),
    (lambda d: d["images"][1].update(id=1), "no other image has"),
    (lambda d: d["annotations"][1].update(id=10), "no other annotation has"),
    (lambda d: d["images"][0].update(width=96.5), "positive integers"),
])
def test_bad_coco_files_are_one_clear_error(coco, tmp_path, edit, message):
    data = json.loads((coco / "instances.json").read_text())
    edit(data)
    (coco / "bad.json").write_text(json.dumps(data))
    result = CliRunner().invoke(main, ["generate", "pd", "--out", str(tmp_path / "o"), "--annotations",
                                       str(coco / "bad.json"), "--data-root", str(coco)])
    assert result.exit_code == 2 and message in result.output, result.output


def test_a_deeply_nested_file_is_one_clear_error(coco, tmp_path):
    (coco / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    result = CliRunner().invoke(main, ["generate", "pd", "--out", str(tmp_path / "o"), "--annotations",
                                       str(coco / "deep.json"), "--data-root", str(coco)])
    assert result.exit_code == 2 and "nested too deeply" in result.output, result.output


def test_limit_is_honoured_and_options_that_do_not_apply_are_refused(coco, tmp_path):
    out = tmp_path / "limited"
    args = ["generate", "pd", "--annotations", str(coco / "instances.json"), "--data-root", str(coco)]
    result = CliRunner().invoke(main, [*args, "--out", str(out), "--limit", "2"])
    assert result.exit_code == 0, result.output
    written = json.loads((out / "annotations" / "instances_PD-L.json").read_text())
    assert [img["id"] for img in written["images"]] == [1, 2]
    assert {ann["image_id"] for ann in written["annotations"]} <= {1, 2}
    assert not (out / "PD-L" / "000000000003.png").exists()
    refused = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "x"), "--size", "64", "--seed", "3"])
    assert refused.exit_code == 2 and "--size, --seed do not apply to COCO-PD" in refused.output, refused.output


def test_a_segmented_objects_bbox_is_the_tight_box_of_its_warped_polygon(coco, tmp_path):
    """A triangle's warped box region is much looser than the warped triangle: COCO's bbox is the object's."""
    from pycocotools.coco import COCO

    from ssl_robustbench.transforms.regions import tight_box

    data = json.loads((coco / "instances.json").read_text())
    triangle = [10.0, 10.0, 60.0, 12.0, 12.0, 50.0]
    data["annotations"] = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10.0, 10.0, 50.0, 40.0],
                            "area": 980.0, "iscrowd": 0, "segmentation": [triangle]}]
    (coco / "tri.json").write_text(json.dumps(data))
    out = tmp_path / "tri"
    result = CliRunner().invoke(main, ["generate", "pd", "--out", str(out), "--annotations", str(coco / "tri.json"),
                                       "--data-root", str(coco), "--magnitude", "0.5"])
    assert result.exit_code == 0, result.output
    api = COCO(str(out / "annotations" / "instances_PD-R.json"))
    ann = api.loadAnns(1)[0]
    transform = MobiusPerspective(view="right", high=0.5)
    params = {"apply": True, **transform.sample()}
    curve = transform.outline(params, np.array(triangle).reshape(-1, 2), 64, 96, step=0.05)
    x1, y1, x2, y2 = tight_box(curve)
    assert ann["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1], abs=0.02)
    region = transform.transform(tv_tensors.BoundingBoxes(torch.tensor([[10.0, 10.0, 50.0, 40.0]]), format="XYWH",
                                                          canvas_size=(64, 96)), params)[0].tolist()
    assert region[2] * region[3] > ann["bbox"][2] * ann["bbox"][3] + 100  # the old, looser box
    mask = api.annToMask(ann)
    ys, xs = np.nonzero(mask)
    assert abs(mask.sum() - ann["area"]) < 0.1 * ann["area"]  # area is the warped polygon's
    assert xs.min() >= ann["bbox"][0] - 1 and xs.max() <= ann["bbox"][0] + ann["bbox"][2] + 1
