"""The Albumentations binding of MPD and LCM (issue 35, item 2): the same pixels, boxes, masks and points as the
torchvision transforms under the same map; vanished boxes dropped with their labels by BboxParams."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

A = pytest.importorskip("albumentations", reason="the optional Albumentations binding (pip install albumentations)")

from ssl_robustbench.transforms.albu import AlbuLogConformal, AlbuMobiusPerspective  # noqa: E402
from ssl_robustbench.transforms.geometric import MobiusPerspective  # noqa: E402

H, W = 64, 80


def _sample(rng):
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    mask = np.zeros((H, W), dtype=np.uint8)
    mask[20:40, 30:50] = 1
    boxes = [[30.0, 20.0, 20.0, 20.0], [0.0, 0.0, 4.0, 4.0]]  # coco x, y, w, h; the second leaves a left view
    return image, mask, boxes, [[40.0, 32.0], [10.0, 50.0]]


def test_albumentations_equals_the_torchvision_transform_for_a_fixed_view():
    image, mask, boxes, points = _sample(np.random.default_rng(0))
    pipeline = A.Compose([AlbuMobiusPerspective(p=1.0, view="left", high=0.4)],
                         bbox_params=A.BboxParams(format="coco", label_fields=["labels"]),
                         keypoint_params=A.KeypointParams(format="xy", remove_invisible=False))
    out = pipeline(image=image, mask=mask, bboxes=boxes, labels=[7, 8], keypoints=points)
    tv = MobiusPerspective(view="left", high=0.4)
    params = {"apply": True, **tv.sample()}
    want_image = tv.transform(tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1)), params)
    assert np.array_equal(out["image"], want_image.permute(1, 2, 0).numpy())
    assert np.array_equal(out["mask"], tv.transform(tv_tensors.Mask(torch.from_numpy(mask)[None]), params)[0].numpy())
    want_boxes = tv.transform(tv_tensors.BoundingBoxes(torch.tensor(boxes), format="XYWH", canvas_size=(H, W)),
                              params)
    assert list(out["labels"]) == [7]  # the corner box vanished, and its label with it
    assert np.allclose(out["bboxes"][0], want_boxes[0].numpy(), atol=1e-3)
    want_points = tv.transform(tv_tensors.KeyPoints(torch.tensor(points), canvas_size=(H, W)), params)
    assert np.allclose(out["keypoints"], want_points.numpy(), atol=1e-4)


def test_random_draws_follow_albumentations_seed():
    image, mask, boxes, points = _sample(np.random.default_rng(1))

    def run(seed):
        pipeline = A.Compose([AlbuLogConformal(p=1.0), AlbuMobiusPerspective(p=1.0)], seed=seed,
                             bbox_params=A.BboxParams(format="coco", label_fields=["labels"]))
        return pipeline(image=image, bboxes=boxes[:1], labels=[1])

    first, again, other = run(3), run(3), run(4)
    assert np.array_equal(first["image"], again["image"]) and np.allclose(first["bboxes"], again["bboxes"])
    assert not np.array_equal(first["image"], other["image"])
